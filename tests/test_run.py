"""End to end: the default pipeline in a real KedroSession against a temporary MLflow store."""

from __future__ import annotations

import json

import torch
from kedro_datasets_experimental.pytorch import PyTorchDataset

from neural_net_lab.engine.config import ModelParams
from neural_net_lab.engine.model import load_mlp

from .conftest import FAST_TRAINING, mlflow_client, run_kedro


def test_default_pipeline_tracks_run_and_saves_loadable_model(project_copy):
    epochs = 3
    run_kedro(project_copy, params={**FAST_TRAINING, "training.epochs": epochs})

    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    assert experiment is not None
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 1
    run = runs[0]
    assert run.data.params["training.optimizer.name"] == "Adam"
    assert float(run.data.params["training.optimizer.lr"]) == 0.001
    for key in ("train_loss", "val_loss", "val_accuracy"):
        history = client.get_metric_history(run.info.run_id, key)
        assert sorted(m.step for m in history) == list(range(epochs)), key
    assert 0.25 < run.data.metrics["test_accuracy"] <= 1.0
    artifacts = {a.path for a in client.list_artifacts(run.info.run_id)}
    assert {
        "confusion_matrix.png",
        "training_curves.png",
        "classification_report.json",
        "feature_importance.png",
        "feature_importance.json",
        "calibration.png",
        "calibration.json",
    } <= artifacts

    metrics = json.loads((project_copy / "data/08_reporting/metrics.json").read_text())
    assert metrics["test_accuracy"] == run.data.metrics["test_accuracy"]
    assert {"test_f1_macro", "baseline_test_accuracy"} <= set(metrics)
    reports = project_copy / "data/08_reporting"
    calibration = json.loads((reports / "calibration.json").read_text())
    ece = calibration["expected_calibration_error"]
    assert metrics["expected_calibration_error"] == run.data.metrics["expected_calibration_error"]
    assert metrics["expected_calibration_error"] == ece
    importance = json.loads((reports / "feature_importance.json").read_text())
    assert len(importance["features"]) == 20 and importance["n_repeats"] == 10
    assert importance["baseline_accuracy"] == metrics["test_accuracy"]

    state = PyTorchDataset(
        filepath=str(project_copy / "data/06_models/phone_price_model.pt")
    ).load()
    model = load_mlp(state, ModelParams(input_dim=20, hidden_dims=[128, 256], n_classes=4))
    assert model(torch.zeros(1, 20)).shape == (1, 4)
