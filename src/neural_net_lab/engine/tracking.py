"""MLflow helpers for experiments that open one child run per variant."""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import mlflow
from mlflow.entities import Metric

logger = logging.getLogger(__name__)


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
    return {key: [{"value": float(v), "step": i} for i, v in enumerate(values)]
            for key, values in history.items()}  # fmt: skip


def log_child_run(
    run_name: str,
    params: Mapping[str, Any],
    history: Mapping[str, list[float]],
    metrics: Mapping[str, float],
) -> str | None:
    """Logs one variant as a child of the active (Kedro) run; returns its run id.

    Params are flattened, every history key becomes a metric with one step per epoch, so
    that selecting sibling runs in the MLflow UI overlays their curves. Without an active
    run (tracking switched off) nothing is logged.
    """
    if mlflow.active_run() is None:
        logger.info("No active MLflow run: %s is not tracked", run_name)
        return None
    now = int(time.time() * 1000)
    entries = [Metric(key, float(value), now, step)
               for key, values in history.items() for step, value in enumerate(values)]  # fmt: skip
    # A final value named like a curve (val_accuracy) is that curve's last step already;
    # logging it again would add a stray point at step 0 to the curve.
    entries += [Metric(key, float(value), now, 0)
                for key, value in metrics.items() if key not in history]  # fmt: skip
    with mlflow.start_run(run_name=run_name, nested=True) as run:
        mlflow.log_params({k: str(v)[:6000] for k, v in flatten_params(params).items()})
        client = mlflow.MlflowClient()
        for start in range(0, len(entries), 1000):  # log_batch takes 1000 metrics at most
            client.log_batch(run.info.run_id, metrics=entries[start : start + 1000])
    return run.info.run_id
