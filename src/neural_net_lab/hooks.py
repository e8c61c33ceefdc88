"""Project hooks."""

from __future__ import annotations

import importlib
import logging
import pkgutil
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DatasetError

from .pipeline_registry import DEFAULT_PIPELINES

logger = logging.getLogger(__name__)


class MissingInputError(DatasetError):
    """A run's input file does not exist; the message says which pipeline writes it."""


def _source(dataset: Any) -> str | None:
    # Wrappers (kedro-mlflow's artifact dataset) keep the real dataset underneath.
    for candidate in (dataset, getattr(dataset, "_dataset", None)):
        path = getattr(candidate, "_filepath", None)
        if path is not None:
            return str(path)
    return None


def _writers(dataset_name: str) -> list[str]:
    """The pipeline folders whose pipeline writes ``dataset_name``.

    Kedro 1.7 loads only the pipeline named by ``--pipeline``, so the folders are read here.
    """
    package = importlib.import_module(f"{__package__}.pipelines")
    writers = []
    for module in pkgutil.iter_modules(package.__path__):
        try:
            module_path = f"{package.__name__}.{module.name}"
            pipeline = importlib.import_module(module_path).create_pipeline()
        except Exception:  # noqa: BLE001 - a broken sibling must not hide the missing file
            continue
        if dataset_name in pipeline.all_outputs():
            writers.append(module.name)
    return writers


def _missing_inputs_message(missing: dict[str, str]) -> str:
    def order(pipeline: str) -> int:  # the default pipelines first, in the order they run
        known = pipeline in DEFAULT_PIPELINES
        return DEFAULT_PIPELINES.index(pipeline) if known else len(DEFAULT_PIPELINES)

    lines, needed = [], []
    for name, path in missing.items():
        writers = sorted(_writers(name), key=order)
        if writers:
            lines.append(f"'{name}' ({path}), written by the {writers[0]} pipeline")
            needed.append(writers[0])
        else:
            lines.append(f"'{name}' ({path}), which no pipeline writes: restore the file or "
                         "point its catalog entry at an existing one")  # fmt: skip
    message = "input file(s) missing: " + "; ".join(lines) + "."
    if needed:
        needed = sorted(set(needed), key=order)
        message += " Run " + " then ".join(f"`kedro run --pipeline {p}`" for p in needed) + " first"
        if all(p in DEFAULT_PIPELINES for p in needed):
            message += f" (or the default `kedro run`, which includes {'it' if len(needed) == 1 else 'them'})"
        message += "."
    return message


class InputFileHooks:
    """Names the files a failing node read, so that an error points at the file to fix, and
    stops a run whose input files are missing before any node runs."""

    # tryfirst: before kedro-mlflow opens a run for a pipeline that cannot start.
    @hook_impl(tryfirst=True)
    def before_pipeline_run(self, run_params: dict[str, Any], pipeline: Any, catalog: Any) -> None:
        if run_params.get("only_missing_outputs"):
            return  # nodes whose outputs exist are skipped, so their inputs may be absent
        missing = {}
        for name in sorted(pipeline.inputs()):
            dataset = None if name.startswith("params:") else catalog.get(name)
            path = _source(dataset) if dataset is not None else None
            if path is not None and not dataset.exists():
                missing[name] = path
        if missing:
            raise MissingInputError(_missing_inputs_message(missing))

    @hook_impl
    def on_node_error(self, error: Exception, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        files = [f"'{name}' ({path})" for name in node.inputs
                 if not name.startswith("params:") and (path := _source(catalog.get(name)))]  # fmt: skip
        if files:
            note = f"node '{node.name}' read {', '.join(files)}"
            error.add_note(note)
            logger.error("%s failed: %s; %s", node.name, error, note)
