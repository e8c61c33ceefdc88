"""engine.tracking: a child run spans the work inside it, against a temporary MLflow store."""

from __future__ import annotations

import time

import mlflow
import pandas as pd
import pytest

from neural_net_lab.engine.tracking import child_run, log_curves, log_history_and_metrics


def test_child_run_is_open_while_its_block_runs_and_fails_with_it(client):
    with child_run("untracked", {"training": {"epochs": 1}}) as run_id:
        assert run_id is None  # no active (Kedro) run: tracking is off
    log_history_and_metrics(None, {"train_loss": [1.0]}, {})  # and logging does nothing

    with mlflow.start_run(run_name="kedro") as parent:
        with child_run("adam", {"training": {"optimizer": {"name": "Adam", "lr": 0.01}}}) as run_id:
            running = client.get_run(run_id)
            assert running.info.status == "RUNNING"
            assert running.data.tags["mlflow.parentRunId"] == parent.info.run_id
            # Params are there from the start, flattened as kedro-mlflow logs the parent's.
            assert running.data.params == {
                "training.optimizer.name": "Adam",
                "training.optimizer.lr": "0.01",
            }
            time.sleep(0.2)  # stands for the training
            history = {"val_accuracy": [0.5, 0.75, 0.875]}
            log_history_and_metrics(run_id, history, {"val_accuracy": 0.875, "test_accuracy": 0.8})
        with pytest.raises(RuntimeError, match="diverged"):
            with child_run("sgd", {}) as failed_id:
                raise RuntimeError("diverged")
        assert mlflow.active_run().info.run_id == parent.info.run_id  # later logging: the parent

    finished, failed = client.get_run(run_id), client.get_run(failed_id)
    assert finished.info.status == "FINISHED" and failed.info.status == "FAILED"
    assert finished.info.end_time - finished.info.start_time >= 200
    # One step per epoch; the final val_accuracy is the curve's last step, not a second point.
    curve = client.get_metric_history(run_id, "val_accuracy")
    assert sorted((m.step, m.value) for m in curve) == [(0, 0.5), (1, 0.75), (2, 0.875)]
    final = client.get_metric_history(run_id, "test_accuracy")
    assert [(m.step, m.value) for m in final] == [(0, 0.8)]


def test_a_curve_is_logged_at_its_own_steps(client):
    log_curves(None, {"curve": {25: 0.5}})  # no run: nothing, and no error
    # Steps that are not epochs (training rows, from a pandas index: numpy integers).
    curve = pd.Series([0.5, 0.75], index=pd.Index([25, 100], name="rows"))
    with mlflow.start_run() as run:
        log_curves(run.info.run_id, {"curve_test_accuracy": curve.to_dict()})
    points = client.get_metric_history(run.info.run_id, "curve_test_accuracy")
    assert sorted((m.step, m.value) for m in points) == [(25, 0.5), (100, 0.75)]
