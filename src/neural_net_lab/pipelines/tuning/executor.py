"""The Dask executor: trials run on a cluster while the driver holds the study.

The node's process (the driver) asks Optuna for each trial, sends the trial's configuration to
a Dask worker, and tells the study the result. Workers never open the study or the MLflow
store, so a remote cluster needs neither the journal file nor a database; only the driver's
sampler sees the study, so one worker and a fixed seed repeat the same trials. A worker prunes
its own trial with the configured pruner over a snapshot of the finished trials' curves. A
trial whose worker died is resubmitted (``tuning.dask.retries``); one that failed is not.
The driver keeps account of the trials it asked for with ``drivers.DriverTrials``, and a
signal stops the loop only between its steps (``signals.SignalGate``).

Only the tuning nodes import this module, inside the node functions: other pipelines must not
pay for optuna and distributed at start-up. ``run_trial`` is at module level, because worker
processes import it.
"""

from __future__ import annotations

import json
import logging
import time
import traceback
from collections.abc import Callable, Mapping
from typing import Any

import dask
import distributed
import numpy as np
import optuna
import torch
from optuna.trial import TrialState

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.engine.cv import cross_validate

from .config import DaskParams, PrunerParams, TuningParams
from .drivers import DriverTrials
from .search_space import configure, suggest
from .signals import SignalGate
from .study import build_pruner

logger = logging.getLogger(__name__)


def connect(settings: DaskParams) -> tuple[Any, Any]:
    """A Dask client: to ``settings.address``, or to a LocalCluster the caller must close."""
    if settings.address:
        try:
            client = distributed.Client(settings.address, timeout=settings.connect_timeout)
        except (OSError, TimeoutError) as error:
            raise ValueError(
                f"tuning.dask.address: no Dask scheduler answered at {settings.address} within "
                f"{settings.connect_timeout} s ({error}); start one with `dask scheduler`"
            ) from error
        return client, None
    # Worker processes import the project and with it its logging config, so their level is
    # set before they start: their start-up chatter stays off the run's console.
    environ = dask.config.get("distributed.nanny.pre-spawn-environ", {})
    environ = {**environ, "DASK_LOGGING__DISTRIBUTED": "error"}
    with dask.config.set({"distributed.nanny.pre-spawn-environ": environ}):
        cluster = distributed.LocalCluster(
            n_workers=settings.n_workers,
            threads_per_worker=1,
            processes=True,
            dashboard_address=settings.dashboard_address,
            silence_logs=logging.ERROR,
            # One thread per worker for torch too: trials, not threads, use the cores.
            env={"OMP_NUM_THREADS": "1", "MKL_NUM_THREADS": "1"},
        )
    return distributed.Client(cluster), cluster


def prepare_worker() -> None:
    """Quiets the worker's own logs (a project's logging config may reach worker processes,
    which import it: the driver's bar and trial lines are the study's record) and caps torch
    at one thread."""
    logging.getLogger("distributed").setLevel(logging.ERROR)
    logging.getLogger("neural_net_lab").setLevel(logging.WARNING)
    torch.set_num_threads(1)


def run_trial(
    data: Mapping[str, Any],
    model: ModelParams,
    training: TrainingParams,
    pruner: PrunerParams,
    finished: list[tuple[str, dict[int, float]]],
    *,
    stacked: bool = True,
) -> dict[str, Any]:
    """One trial on a worker: cross-validates the configuration; never raises.

    ``finished`` holds the states and per-epoch curves of the study's finished trials, for
    the pruner. An error (a NaN loss too) is returned as such, so that Dask does not retry a
    trial that would fail again; only a dead worker makes Dask resubmit it.
    """
    torch.set_num_threads(1)
    optuna.logging.set_verbosity(optuna.logging.WARNING)
    # Workers' progress bars would interleave on the run's console: the driver's study bar
    # is the one shown.
    training = training.model_copy(update={"progress": False})
    started = time.time()
    result: dict[str, Any] = {"worker": _worker_name(), "started": started}
    local = optuna.create_study(direction="maximize", pruner=build_pruner(pruner))
    for state, curve in finished:
        local.add_trial(
            optuna.trial.create_trial(
                state=optuna.trial.TrialState[state],
                value=curve[max(curve)] if curve else None,
                intermediate_values=curve,
            )
        )
    trial = local.ask()

    def on_epoch(epoch: int, mean_accuracy: float) -> bool:
        trial.report(mean_accuracy, epoch)
        return trial.should_prune()

    try:
        cv = cross_validate(
            data["features"],
            data["labels"],
            data["folds"],
            model,
            training,
            on_epoch=on_epoch,
            stacked=stacked,
        )
    except Exception as error:  # noqa: BLE001 - a failed trial is a result, the study goes on
        result.update(
            state="FAIL",
            error=f"{type(error).__name__}: {error}",
            traceback=traceback.format_exc(limit=3),
        )
    else:
        result.update(
            state="PRUNED" if cv.stopped else "COMPLETE",
            fold_accuracy=cv.val_accuracy,
            fold_log_loss=cv.val_log_loss,
            mean_accuracy=cv.mean_accuracy,
            std_accuracy=cv.std_accuracy,
            mean_log_loss=cv.mean_log_loss,
            epochs_run=cv.epochs_run,
            curve=[float(np.mean(v)) for v in zip(*(h["val_accuracy"] for h in cv.histories))],
        )
    result["finished"] = time.time()
    return result


def _worker_name() -> str:
    try:
        return distributed.get_worker().address
    except ValueError:  # not on a Dask worker (called directly)
        return "local"


def optimize(
    study: Any,
    client: Any,
    *,
    data: Mapping[str, Any],
    tuning: TuningParams,
    model: ModelParams,
    training: TrainingParams,
    storage: Any,
    on_result: Callable[[Any, dict[str, Any]], None],
) -> int:
    """Runs up to ``tuning.n_trials`` new trials (and/or until ``tuning.timeout``) on the
    cluster, as many at a time as it has threads; returns how many ran.

    With a database ``storage`` the driver beats for its running trials while it waits for
    their results: Optuna beats only inside ``study.optimize``, not for ask and tell.
    Progress shows as one bar (``training.progress``, on a terminal) and one log line per
    trial (``progress``).

    If the driver stops early (Ctrl-C or SIGTERM, which the project's hooks raise as
    ``RunInterrupted``, or any error), the submitted trials are cancelled (a remote cluster
    stops working for this run) and every trial it asked for and did not tell is recorded
    failed, with the reason; finished trials are already in the study. A signal is acted on
    between the loop's steps (``SignalGate``), so no trial is left between the study and
    this driver's account of it, and a result that came is told whole.
    """
    # The driver's only: workers import this module, and need neither mlflow nor matplotlib.
    from .progress import StudyProgress  # noqa: PLC0415

    slots = max(1, sum(client.nthreads().values()))
    # Every worker imports torch and the engine first (unpickling this function does), so
    # that no trial's duration includes a worker's start-up.
    workers = list(client.scheduler_info()["workers"])
    distributed.wait([client.submit(prepare_worker, workers=[w], pure=False) for w in workers])
    budget = tuning.n_trials if tuning.n_trials is not None else float("inf")
    deadline = time.monotonic() + tuning.timeout if tuning.timeout else float("inf")
    # Every trial carries the rows (a few hundred KB) in its own task. Scattered data is
    # kept on one worker (the active memory manager drops extra replicas) and cannot be
    # recomputed, so a worker that died holding it cancelled every trial
    # (dask/distributed#3149); a task's shared result would draw all trials to its worker.
    rows = dict(data)
    pending: dict[Any, Any] = {}
    asked = 0
    own = DriverTrials(study, storage, tuning.stale_after)
    bar = StudyProgress(study, tuning, show=training.progress)

    def told(frozen: Any, result: dict[str, Any]) -> None:
        if frozen is not None:
            bar.told(frozen)
            on_result(frozen, result)

    try:
        with SignalGate() as gate:
            while True:
                gate.let_through()
                while len(pending) < slots and asked < budget and time.monotonic() < deadline:
                    trial, blocks = _ask(own, tuning, model, training)
                    asked += 1
                    if isinstance(blocks, dict):  # values the blocks refuse: failed at once
                        told(_tell(study, trial, blocks, own), blocks)
                        continue
                    task = (rows, *blocks, tuning.pruner, _finished_curves(study))
                    pending[_submit(client, study.study_name, trial, task, tuning)] = trial
                if not pending:
                    bar.finished(asked)
                    return asked
                gate.let_through()
                try:
                    done = distributed.wait(
                        list(pending),
                        timeout=_soonest(own.wait(), bar.wait(), gate.wait()),
                        return_when="FIRST_COMPLETED",
                    ).done
                except TimeoutError:  # a beat, the bar's clock or a signal is due
                    done = set()
                own.beat()
                bar.tick()
                for future in done:
                    trial = pending.pop(future)
                    result = _result_of(future)
                    told(_tell(study, trial, result, own), result)
    except BaseException as error:
        client.cancel(list(pending))
        own.fail_all(error)
        raise
    finally:
        bar.close()


def _ask(
    own: DriverTrials, tuning: TuningParams, model: ModelParams, training: TrainingParams
) -> tuple[Any, tuple[ModelParams, TrainingParams] | dict[str, Any]]:
    """A new trial and its blocks, or the failed result of values the blocks refuse."""
    trial = own.ask()
    values = suggest(trial, tuning.search_space)
    trial.set_user_attr("values", _jsonable(values))
    try:
        return trial, configure(model, training, values)
    except ValueError as error:
        return trial, {"state": "FAIL", "error": str(error)}


def _submit(client: Any, study_name: str, trial: Any, task: tuple, tuning: TuningParams) -> Any:
    return client.submit(
        run_trial,
        *task,
        stacked=tuning.stacked,
        pure=False,
        retries=tuning.dask.retries,
        key=f"trial-{study_name}-{trial.number}-{time.time_ns()}",
    )


def _result_of(future: Any) -> dict[str, Any]:
    try:
        return future.result()
    except Exception as error:  # noqa: BLE001 - e.g. KilledWorker after retries
        return {"state": "FAIL", "error": f"{type(error).__name__}: {error}"}


def _soonest(*waits: float | None) -> float | None:
    """The shortest of the waits that are set (None: none is, wait for a result)."""
    return min((w for w in waits if w is not None), default=None)


def _finished_curves(study: Any) -> list[tuple[str, dict[int, float]]]:
    states = (TrialState.COMPLETE, TrialState.PRUNED)
    return [
        (t.state.name, dict(t.intermediate_values))
        for t in study.get_trials(deepcopy=False, states=states)
    ]


def _tell(study: Any, trial: Any, result: dict[str, Any], own: DriverTrials) -> Any:
    """Records the result in the study; returns the finished trial (None: dropped)."""
    try:
        frozen = _record(study, trial, result)
    except optuna.exceptions.UpdateFinishedTrialError:
        # Failed as stale by a run that saw no heartbeat from this driver for the grace
        # period (this driver was stalled longer than tuning.heartbeat.grace_period).
        logger.warning(
            "trial %d was failed as stale by another run before its result came: dropped",
            trial.number,
        )
        frozen = None
    own.told(trial)
    return frozen


def _record(study: Any, trial: Any, result: dict[str, Any]) -> Any:
    for epoch, value in enumerate(result.get("curve", [])):
        trial.report(value, epoch)
    attrs = (
        "worker",
        "started",
        "finished",
        "error",
        "fold_accuracy",
        "fold_log_loss",
        "std_accuracy",
        "mean_log_loss",
        "epochs_run",
    )
    for key in attrs:
        if key in result:
            trial.set_user_attr(key, result[key])
    state = TrialState[result["state"]]
    if state == TrialState.COMPLETE:
        return study.tell(trial, result["mean_accuracy"])
    return study.tell(trial, state=state)


def _jsonable(values: Mapping[str, Any]) -> dict[str, Any]:
    return json.loads(json.dumps(values, default=str))
