"""Which pipeline writes a dataset: the remedy that errors about a missing or damaged input
file name (``kedro run --pipelines <writer>``)."""

from __future__ import annotations

import importlib
import pkgutil

from .pipeline_registry import DEFAULT_PIPELINES


def run_order(pipeline: str) -> int:
    """Sort key: the default pipelines first, in the order they run, then the others."""
    known = pipeline in DEFAULT_PIPELINES
    return DEFAULT_PIPELINES.index(pipeline) if known else len(DEFAULT_PIPELINES)


def writers(dataset_name: str) -> list[str]:
    """The pipeline folders whose pipeline writes ``dataset_name``, in ``run_order``.

    Kedro 1.7 loads only the pipeline named by ``--pipelines``, so the folders are read here.
    """
    package = importlib.import_module(f"{__package__}.pipelines")
    found = []
    for module in pkgutil.iter_modules(package.__path__):
        try:
            module_path = f"{package.__name__}.{module.name}"
            pipeline = importlib.import_module(module_path).create_pipeline()
        except Exception:  # noqa: BLE001 - a broken sibling must not hide the missing file
            continue
        if dataset_name in pipeline.all_outputs():
            found.append(module.name)
    return sorted(found, key=run_order)


def command(pipeline: str) -> str:
    """The command that runs ``pipeline``, quoted as the messages show it."""
    return f"`kedro run --pipelines {pipeline}`"


def default_run_note(pipelines: list[str]) -> str:
    """The note that the default ``kedro run`` does it too, when it includes all of them."""
    if not pipelines or not all(p in DEFAULT_PIPELINES for p in pipelines):
        return ""
    return (
        f" (or the default `kedro run`, which includes {'it' if len(pipelines) == 1 else 'them'})"
    )
