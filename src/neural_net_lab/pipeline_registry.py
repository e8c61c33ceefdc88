"""Project pipelines."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

DEFAULT_PIPELINES = ("data_processing", "training", "evaluation")

_run_config: dict[str, Any] = {}


def share_run_config(loader: Any) -> None:
    """Makes a session's config loader the source of ``run_parameters`` (``RunConfigHooks``)."""
    _run_config.clear()
    _run_config["loader"] = loader


def run_parameters() -> Mapping[str, Any] | None:
    """The parameters of the Kedro session whose pipelines are being built (its ``--env``,
    ``--conf-source`` and ``--params`` included); None otherwise.

    Kedro builds the pipelines after it creates the session's context, so pipeline code can
    read the context's configuration instead of loading the project's a second time.
    """
    loader = _run_config.get("loader")
    if loader is None:
        return None
    if "parameters" not in _run_config:
        _run_config["parameters"] = loader["parameters"]
    return _run_config["parameters"]


def register_pipelines() -> dict[str, Pipeline]:
    """Registers every pipeline folder under its name; ``__default__`` is the main job.

    ``kedro run --pipelines X`` makes ``find_pipelines`` return only X (Kedro 1.7), so the
    default is composed only when all of its parts were found.
    """
    try:
        pipelines = find_pipelines(raise_errors=True)
    finally:
        # The session's configuration was for building these: later code (a test, another
        # session in the same process) must not read it.
        _run_config.clear()
    if all(name in pipelines for name in DEFAULT_PIPELINES):
        pipelines["__default__"] = sum(
            (pipelines[name] for name in DEFAULT_PIPELINES), Pipeline([])
        )
    return pipelines
