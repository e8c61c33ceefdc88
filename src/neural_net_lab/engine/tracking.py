"""MLflow helpers for experiments that open one child run per variant."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from typing import Any

import mlflow
from mlflow.entities import Metric, Param, RunTag

logger = logging.getLogger(__name__)

# MLflow's REST and SQL stores take at most 1000 metrics and 100 params in one log_batch call.
_METRICS_PER_BATCH = 1000
_PARAMS_PER_BATCH = 100


def log_batch(
    run_id: str,
    metrics: Sequence[Metric] = (),
    params: Sequence[Param] = (),
    tags: Sequence[RunTag] = (),
) -> None:
    """Logs any number of metrics, params and tags into a run in as few calls as MLflow allows."""
    client = mlflow.MlflowClient()
    calls = max(
        1,
        -(-len(metrics) // _METRICS_PER_BATCH),
        -(-len(params) // _PARAMS_PER_BATCH),
    )
    for call in range(calls):
        client.log_batch(
            run_id,
            metrics=metrics[call * _METRICS_PER_BATCH : (call + 1) * _METRICS_PER_BATCH],
            params=params[call * _PARAMS_PER_BATCH : (call + 1) * _PARAMS_PER_BATCH],
            tags=tags if call == 0 else (),
        )


def flatten_params(params: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """``{"optimizer": {"lr": 0.1}}`` → ``{"optimizer.lr": 0.1}``, as kedro-mlflow logs them."""
    flat: dict[str, Any] = {}
    for key, value in params.items():
        name = f"{prefix}{key}"
        if isinstance(value, Mapping):
            flat.update(flatten_params(value, f"{name}."))
        else:
            flat[name] = value
    return flat


def history_as_metrics(history: Mapping[str, list[float]]) -> dict[str, list[dict[str, float]]]:
    """Per-epoch lists → the format of kedro-mlflow's ``MlflowMetricsHistoryDataset``."""
    return {
        key: [{"value": float(v), "step": i} for i, v in enumerate(values)]
        for key, values in history.items()
    }


@contextmanager
def child_run(run_name: str, params: Mapping[str, Any]) -> Iterator[str | None]:
    """A child run of the active (Kedro) run around one variant's training; yields its run id.

    Open while the variant trains, so that MLflow shows it RUNNING and its real duration;
    params (flattened) are logged at the start. An exception inside ends it FAILED and goes on.
    Without an active run (tracking switched off) nothing is logged and it yields None.
    """
    if mlflow.active_run() is None:
        logger.info("No active MLflow run: %s is not tracked", run_name)
        yield None
        return
    with mlflow.start_run(run_name=run_name, nested=True) as run:
        mlflow.log_params({k: str(v)[:6000] for k, v in flatten_params(params).items()})
        yield run.info.run_id


def log_history_and_metrics(
    run_id: str | None, history: Mapping[str, list[float]], metrics: Mapping[str, float]
) -> None:
    """Logs per-epoch curves and final metrics into a run (a ``child_run``); nothing without one.

    Every history key becomes a metric with one step per epoch, so that selecting sibling runs
    in the MLflow UI overlays their curves.
    """
    curves = {key: dict(enumerate(values)) for key, values in history.items()}
    # A final value named like a curve (val_accuracy) is that curve's last step already;
    # logging it again would add a stray point at step 0 to the curve.
    log_curves(run_id, {**curves, **{k: {0: v} for k, v in metrics.items() if k not in history}})


def log_curves(run_id: str | None, curves: Mapping[str, Mapping[int, float]]) -> None:
    """Logs each curve's points ``{step: value}`` (epochs, training rows...) into a run in one
    batch; nothing without one (tracking off)."""
    if run_id is None:
        return
    now = int(time.time() * 1000)
    entries = [
        Metric(key, float(value), now, int(step))
        for key, points in curves.items()
        for step, value in points.items()
    ]
    log_batch(run_id, metrics=entries)
