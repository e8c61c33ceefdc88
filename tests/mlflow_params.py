"""Tiny runs of every pipeline and the MLflow params they log (shared by the typed-params test
and the script that recorded the expected params before parameters were typed)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from .conftest import FAST_TRAINING, mlflow_client

EXPECTED = Path(__file__).parent / "data" / "mlflow_params.json"

# (pipeline, --params) in an order where each run finds the files the earlier ones wrote.
RUNS: list[tuple[str | None, dict[str, Any]]] = [
    (None, FAST_TRAINING),
    ("optimizers", {**FAST_TRAINING, "optimizers_trajectories.rosenbrock.steps": 20}),
    ("regularization", FAST_TRAINING),
    (
        "transfer",
        {
            **FAST_TRAINING,
            "transfer.training.epochs": 2,
            "transfer.learning_curve.sizes": [30],
            "transfer.learning_curve.repeats": 1,
        },
    ),
    ("backprop", {}),
    ("inference", {}),
    ("synthetic_data", {"synthetic_data.n_rows": 200}),
]


def logged_params() -> dict[str, list[dict[str, str]]]:
    """Every run's params in the test's MLflow store: '<parent>/<run>' → params, sorted."""
    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    names = {run.info.run_id: run.info.run_name for run in runs}
    found: dict[str, list[dict[str, str]]] = {}
    for run in runs:
        parent = names.get(run.data.tags.get("mlflow.parentRunId"), "")
        found.setdefault(f"{parent}/{run.info.run_name}", []).append(dict(run.data.params))
    return {key: sorted(values, key=json.dumps) for key, values in sorted(found.items())}
