"""What a study shows: its trials as a table and as MLflow child runs, the best trial, plots.
Who wins among the candidates, and how sure, is ``verdicts``."""

from __future__ import annotations

import json
import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import mlflow
import pandas as pd
from matplotlib import pyplot as plt
from mlflow.entities import Param

from neural_net_lab.engine.tracking import flatten_params, log_batch, log_history_and_metrics

logger = logging.getLogger(__name__)

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def best_trial(trials: Sequence[Any]) -> Any:
    """The complete trial with the highest mean CV accuracy; the lower mean validation
    log-loss breaks ties (accuracy on a few hundred rows ties often)."""
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        raise ValueError(
            "the study has no complete trial to choose from: run more trials "
            "(tuning.n_trials > 0) or check the failed trials' errors in tuning_trials.csv"
        )
    return max(complete, key=lambda t: (t.value, -t.user_attrs.get("mean_log_loss", 0.0)))


def state_counts(trials: Sequence[Any]) -> dict[str, int]:
    counts = Counter(t.state.name for t in trials)
    return {state.lower(): counts.get(state, 0) for state in STATES}


def trial_line(trial: Any) -> str:
    """The one line per trial of the tuning log (``progress``)."""
    attrs = trial.user_attrs
    score = (
        f"CV accuracy {trial.value:.4f} ± {attrs.get('std_accuracy', 0):.4f}"
        if trial.value is not None and trial.state.name == "COMPLETE"
        else f"after {attrs.get('epochs_run', 0)} epochs"
        if trial.state.name == "PRUNED"
        else attrs.get("error", "")
    )
    seconds = _duration(trial)
    values = ", ".join(
        f"{k.split('.')[-1]}={_short(v)}" for k, v in attrs.get("values", {}).items()
    )
    return (
        f"trial {trial.number} {trial.state.name.lower()}: {score} "
        f"({seconds:.1f} s on {attrs.get('worker', '?')}) {values}"
    )


def trials_table(trials: Sequence[Any]) -> pd.DataFrame:
    """One row per trial: number, state, sampled values, CV scores, duration, worker."""
    rows = []
    for trial in trials:
        attrs = trial.user_attrs
        row = {
            "number": trial.number,
            "state": trial.state.name.lower(),
            "default": bool(attrs.get("default_configuration", False)),
        }
        row.update({k: _cell(v) for k, v in attrs.get("values", {}).items()})
        row.update(
            mean_cv_accuracy=trial.value if trial.state.name == "COMPLETE" else None,
            std_cv_accuracy=attrs.get("std_accuracy"),
            mean_cv_log_loss=attrs.get("mean_log_loss"),
            epochs_run=attrs.get("epochs_run"),
            duration_s=round(_duration(trial), 2),
            worker=attrs.get("worker"),
            error=attrs.get("error"),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def log_study(trials: Sequence[Any]) -> None:
    """The best trial's value, number and values and the trial counts by state, in the active
    (Kedro) run; nothing without one. Raises when no trial completed."""
    best = best_trial(trials)
    if mlflow.active_run() is None:
        return
    counts = state_counts(trials)
    mlflow.log_metrics(
        {"tuning.best_cv_accuracy": best.value, "tuning.best_trial": best.number}
        | {f"tuning.trials_{state}": n for state, n in counts.items()}
    )
    values = best.user_attrs.get("values", {})
    mlflow.log_params({f"tuning.best.{k}": str(v)[:6000] for k, v in values.items()})


def log_trial_run(trial: Any) -> str | None:
    """One finished child run of the active (Kedro) run per trial, with the trial's own start
    and end; nothing without a run.

    Logged by the driver from the trial's result, so that workers need no tracking store.
    """
    parent = mlflow.active_run()
    if parent is None:
        return None
    attrs = trial.user_attrs
    state = trial.state.name.lower()
    tags = {
        "mlflow.parentRunId": parent.info.run_id,
        "mlflow.runName": f"trial_{trial.number}",
        "optuna.trial_number": str(trial.number),
        "optuna.state": state,
        "dask.worker": str(attrs.get("worker", "")),
        "optuna.study": str(attrs.get("study", "")),
    }
    if attrs.get("error"):
        tags["optuna.error"] = str(attrs["error"])[:5000]
    if attrs.get("default_configuration"):
        tags["optuna.default_configuration"] = "true"
    client = mlflow.MlflowClient()
    start = int(trial.datetime_start.timestamp() * 1000)
    end = int((trial.datetime_complete or trial.datetime_start).timestamp() * 1000)
    run = client.create_run(parent.info.experiment_id, start_time=start, tags=tags)
    params = [Param(k, str(v)[:6000]) for k, v in flatten_params(attrs.get("values", {})).items()]
    log_batch(run.info.run_id, params=params)
    metrics = {f"fold_{f}_val_accuracy": v for f, v in enumerate(attrs.get("fold_accuracy", []))}
    metrics |= {
        k: attrs[k]
        for k in ("std_accuracy", "mean_log_loss", "epochs_run")
        if attrs.get(k) is not None
    }
    if trial.state.name == "COMPLETE":
        metrics["mean_accuracy"] = trial.value
    # The per-epoch mean over folds, one step per epoch: the pruner's view, overlaid in the UI.
    curve = [v for _, v in sorted(trial.intermediate_values.items())]
    log_history_and_metrics(run.info.run_id, {"mean_val_accuracy": curve}, metrics)
    client.set_terminated(
        run.info.run_id, "FAILED" if state == "fail" else "FINISHED", end_time=end
    )
    return run.info.run_id


def figure_of(plot: Any, *args: Any, title: str, **options: Any) -> plt.Figure:
    """An Optuna matplotlib plot as a figure; a note in its place when it cannot be drawn
    (importances need two complete trials that differ)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        try:
            axis = plot(*args, **options)
            figure = axis.figure if hasattr(axis, "figure") else axis.flat[0].figure
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            figure, axis = plt.subplots(figsize=(6, 2))
            axis.axis("off")
            axis.text(0.5, 0.5, f"{title}: not enough trials ({error})", ha="center", wrap=True)
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    return figure


def _duration(trial: Any) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def settings_text(params: dict[str, Any]) -> str:
    """A model's arguments as `key=value, ...`, floats to 3 significant digits."""
    return ", ".join(f"{key}={_short(value)}" for key, value in params.items())


def _cell(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) else json.dumps(value)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return str(value.get("name", value))
    return str(value)
