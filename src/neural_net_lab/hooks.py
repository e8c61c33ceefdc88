"""Project hooks: a missing input names the pipeline that writes it, and an interrupted or failed
run leaves its MLflow runs KILLED or FAILED. (The run's config loader reaches the build of its
pipelines through ``run_config.RunConfigHooks``.)"""

from __future__ import annotations

import logging
import signal
import threading
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.io import DatasetError

from .writers import command, default_run_note, run_order, writers

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


def _missing_inputs_message(missing: dict[str, str]) -> str:
    lines, needed = [], []
    for name, path in missing.items():
        found = writers(name)
        if found:
            lines.append(f"'{name}' ({path}), written by the {found[0]} pipeline")
            needed.append(found[0])
        else:
            lines.append(
                f"'{name}' ({path}), which no pipeline writes: restore the file or "
                "point its catalog entry at an existing one"
            )
    message = "input file(s) missing: " + "; ".join(lines) + "."
    if needed:
        needed = sorted(set(needed), key=run_order)
        message += " Run " + " then ".join(command(p) for p in needed) + " first"
        message += default_run_note(needed) + "."
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
    def on_node_error(
        self, error: Exception, node: Any, catalog: Any, inputs: dict[str, Any]
    ) -> None:
        if isinstance(error, RunInterrupted):
            return  # the node was stopped, not broken by its inputs
        files = [
            f"'{name}' ({path})"
            for name in node.inputs
            if not name.startswith("params:") and (path := _source(catalog.get(name)))
        ]
        if files:
            note = f"node '{node.name}' read {', '.join(files)}"
            error.add_note(note)
            logger.error("%s failed: %s; %s", node.name, error, note)


class RunInterrupted(Exception):  # noqa: N818 - reads as what happened, like KeyboardInterrupt
    """SIGINT (Ctrl-C) or SIGTERM during a run.

    An ``Exception``, unlike ``KeyboardInterrupt``, so that Kedro calls ``on_pipeline_error``
    and the runs are closed by the hooks rather than by MLflow's exit handler, which would mark
    them FINISHED.
    """

    def __init__(self, signum: int) -> None:
        self.signal = signal.Signals(signum)
        super().__init__(f"run interrupted by {self.signal.name}")


class RunStateHooks:
    """MLflow run states that say what happened: Ctrl-C or SIGTERM ends the Kedro run's MLflow
    run and its open child runs KILLED; an exception leaves no child run RUNNING (FAILED).

    A signal that arrives while a dataset is being saved waits until the save ends, so that
    no model or report file is left half-written. A second signal, once the first has been
    raised, gets Python's default behaviour. Only a run in the main thread installs handlers
    (Python allows no other).
    """

    _SIGNALS = (signal.SIGINT, signal.SIGTERM)

    def __init__(self) -> None:
        self._previous: dict[int, Any] = {}
        self._saving = False
        self._pending: int | None = None
        self._run_id: str | None = None
        self._interrupted_run_id: str | None = None

    # trylast: kedro-mlflow has opened the Kedro run by then.
    @hook_impl(trylast=True)
    def before_pipeline_run(self) -> None:
        import mlflow  # noqa: PLC0415 - loaded by kedro-mlflow already; keeps settings light

        run = mlflow.active_run()
        self._run_id = run.info.run_id if run else None
        self._saving, self._pending, self._interrupted_run_id = False, None, None
        if threading.current_thread() is threading.main_thread():
            self._previous = {sig: signal.signal(sig, self._on_signal) for sig in self._SIGNALS}

    @hook_impl(tryfirst=True)
    def before_dataset_saved(self) -> None:
        self._saving = True

    @hook_impl(trylast=True)
    def after_dataset_saved(self) -> None:
        self._saving = False
        if self._pending is not None:
            self._interrupt(self._pending)

    @hook_impl(trylast=True)
    def after_pipeline_run(self) -> None:
        self._restore_signals()

    # trylast: after kedro-mlflow has ended the runs on MLflow's stack FAILED.
    @hook_impl(trylast=True)
    def on_pipeline_error(self, error: Exception) -> None:
        self._restore_signals()
        if self._run_id is None:
            return
        import mlflow  # noqa: PLC0415

        client = mlflow.MlflowClient()
        interrupted = isinstance(error, RunInterrupted)
        status = "KILLED" if interrupted else "FAILED"
        runs = _open_child_runs(client, self._run_id)
        if interrupted:
            runs += [self._run_id, *_run_chain(client, self._interrupted_run_id, self._run_id)]
        for run_id in dict.fromkeys(runs):
            client.set_terminated(run_id, status)

    def _on_signal(self, signum: int, frame: Any) -> None:
        if self._saving:
            self._pending = signum
        else:
            self._interrupt(signum)

    def _interrupt(self, signum: int) -> None:
        import mlflow  # noqa: PLC0415

        self._pending = None
        # The innermost run open at the signal (a variant's child run); only read here, the
        # store is written by on_pipeline_error, outside the signal handler.
        run = mlflow.active_run()
        self._interrupted_run_id = run.info.run_id if run else None
        self._restore_signals()
        raise RunInterrupted(signum)

    def _restore_signals(self) -> None:
        for sig, handler in self._previous.items():
            signal.signal(sig, handler)
        self._previous = {}


def _open_child_runs(client: Any, parent_id: str) -> list[str]:
    """Runs still RUNNING under ``parent_id`` (opened in a thread or by a client)."""
    experiment_id = client.get_run(parent_id).info.experiment_id
    found = client.search_runs(
        [experiment_id],
        filter_string=f"tags.mlflow.parentRunId = '{parent_id}' and attributes.status = 'RUNNING'",
    )
    return [run.info.run_id for run in found]


def _run_chain(client: Any, run_id: str | None, stop: str) -> list[str]:
    """``run_id`` and its parents up to (without) ``stop``: the nested runs open at a signal,
    which their context managers have just ended FAILED."""
    chain = []
    while run_id and run_id != stop:
        chain.append(run_id)
        run_id = client.get_run(run_id).data.tags.get("mlflow.parentRunId")
    return chain if run_id == stop else []  # not under the Kedro run: not this run's to end
