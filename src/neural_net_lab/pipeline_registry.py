"""Project pipelines (one a folder, found by ``find_pipelines``) and the run's parameters for
the code that must read them before any node runs (``project_parameters``)."""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path
from typing import Any

from kedro.framework.project import find_pipelines, settings
from kedro.pipeline import Pipeline
from kedro.utils import find_kedro_project

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


def project_parameters(project_path: Path | str | None = None) -> Mapping[str, Any] | None:
    """The parameters pipeline code may read while pipelines are built; None without a project.

    During a run they are the session's (``run_parameters``: its ``--env``, ``--conf-source``
    and ``--params``), so no second configuration is loaded. Outside a run (``kedro viz``,
    ``kedro registry``) or with ``project_path`` they are read with the project's own config
    loader: ``conf/base``, then ``$KEDRO_ENV`` or ``conf/local``. The project is
    ``project_path`` or the one around the working directory.
    """
    parameters = run_parameters() if project_path is None else None
    if parameters is not None:
        return parameters
    project = project_path or find_kedro_project(Path.cwd())
    if project is None:
        return None
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(Path(project) / settings.CONF_SOURCE),
        env=os.environ.get("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]


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
