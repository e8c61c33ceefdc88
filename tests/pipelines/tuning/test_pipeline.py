"""`kedro run --pipelines tuning` in real Kedro sessions: a real LocalCluster of 2 worker
processes, a real journal file and a real MLflow SQLite store in a temporary folder."""

from __future__ import annotations

import json

import optuna
import pandas as pd
import pytest
import torch
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from neural_net_lab.engine.config import ColumnsParams
from neural_net_lab.engine.data import predict_logits, to_tensors
from neural_net_lab.engine.model import load_mlp
from neural_net_lab.pipelines.data_processing.nodes import standardize
from neural_net_lab.pipelines.inference.nodes import validate_phones_to_price
from tests.conftest import COLUMNS, mlflow_client, run_kedro

from .conftest import tiny_blocks, write_local_parameters

COLUMNS_TYPED = ColumnsParams.model_validate(COLUMNS)


def _children(client, parent_id):
    experiment = client.get_experiment_by_name("neural_net_lab")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]


def _check_child_runs(client, parent_id, data):
    """One child run per trial with the trial's state, times, values and worker."""
    children = _children(client, parent_id)
    assert len(children) == 6
    study = optuna.load_study(
        study_name="test",
        storage=optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(
                str(data / "07_model_output/tuning_study.journal")
            )
        ),
    )
    by_number = {t.number: t for t in study.trials}
    for run in children:
        trial = by_number[int(run.data.tags["optuna.trial_number"])]
        state = trial.state.name.lower()
        assert run.data.tags["optuna.state"] == state
        assert run.info.status == ("FAILED" if state == "fail" else "FINISHED")
        assert run.info.start_time == int(trial.datetime_start.timestamp() * 1000)
        assert run.info.end_time == int(trial.datetime_complete.timestamp() * 1000)
        assert run.data.params["model.hidden_dims"] == str(
            trial.user_attrs["values"]["model.hidden_dims"]
        )
        assert run.data.tags["dask.worker"].startswith("tcp://")
        if state == "fail":
            assert "training loss is" in run.data.tags["optuna.error"]
        else:
            assert set(run.data.metrics) >= {
                "fold_0_val_accuracy",
                "fold_1_val_accuracy",
                "mean_accuracy",
            }
    return study


def _check_tuned_inference(project_copy, model):
    """inference.network=tuned prices phones with the tuned network, rebuilt from its blocks."""
    data = project_copy / "data"
    run_kedro(project_copy, "inference", {"inference.network": "tuned"})
    priced = pd.read_csv(data / "07_model_output/price_predictions.csv")
    phones = validate_phones_to_price(
        pd.read_csv(data / "01_raw/phones_to_price.csv"), COLUMNS_TYPED
    )
    scaler = json.loads((data / "06_models/scaler.json").read_text())
    network = load_mlp(torch.load(data / "06_models/tuned_phone_price_model.pt"), model)
    features, _ = to_tensors(standardize(phones, scaler, COLUMNS_TYPED), COLUMNS_TYPED.features)
    expected = torch.softmax(predict_logits(network, features), dim=1).numpy()
    assert priced[[f"probability_{c}" for c in range(4)]].to_numpy() == pytest.approx(
        expected, abs=1e-6
    )


def _check_tuned_environment(project_copy, tuned):
    """`kedro run --env tuned`: the default pipelines train with the tuned blocks."""
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="tuned") as session:
        session.run()
    state = torch.load(project_copy / "data/06_models/phone_price_model.pt")
    assert state["0.weight"].shape[0] == tuned["model"]["hidden_dims"][0]
    history = json.loads((project_copy / "data/08_reporting/training_history.json").read_text())
    assert len(history["train_loss"]) == tuned["training"]["epochs"]


def test_tuning_runs_resumes_refits_and_refuses_other_data(project_copy):
    write_local_parameters(project_copy, tiny_blocks())
    run_kedro(project_copy, "tuning")

    data = project_copy / "data"
    trials = pd.read_csv(data / "08_reporting/tuning_trials.csv")
    assert len(trials) == 6 and trials.loc[0, "default"]
    assert set(trials["state"]) <= {"complete", "fail"} and "fail" in set(trials["state"])
    assert trials["worker"].nunique() >= 2  # both worker processes ran trials

    client = mlflow_client()
    (parent,) = [
        r
        for r in client.search_runs([client.get_experiment_by_name("neural_net_lab").experiment_id])
        if not r.data.tags.get("mlflow.parentRunId")
    ]
    study = _check_child_runs(client, parent.info.run_id, data)
    assert (
        parent.data.metrics["tuning.trials_complete"] + parent.data.metrics["tuning.trials_fail"]
        == 6
    )
    assert parent.data.metrics["tuning.best_cv_accuracy"] == max(
        t.value for t in study.trials if t.state.name == "COMPLETE"
    )

    metrics = json.loads((data / "08_reporting/tuning_metrics.json").read_text())
    assert set(metrics) >= {"tuned", "default", "baseline", "test_accuracy"}
    assert metrics["tuned"]["cv_accuracy"] >= metrics["default"]["cv_accuracy"]
    tuned = yaml.safe_load((data / "06_models/tuned_parameters.yml").read_text())
    assert tuned["trial"] == metrics["best_trial"] and set(tuned) >= {"model", "training"}
    assert (data / "06_models/tuned_phone_price_model.pt").exists()
    assert not (data / "06_models/phone_price_model.pt").exists()  # the default training's file
    assert yaml.safe_load((project_copy / "conf/tuned/parameters.yml").read_text()) == {
        "model": tuned["model"],
        "training": tuned["training"],
    }
    for name in ("tuning_summary.md", "tuning_history.png", "tuning_importances.png"):
        assert (data / "08_reporting" / name).stat().st_size > 0
    version = client.get_model_version_by_alias("phone_price_classifier", "tuned")
    served = json.loads((data / "06_models/tuned_served_model.json").read_text())
    assert str(served["registered_model_version"]) == str(version.version)

    _check_tuned_inference(project_copy, tuned["model"])
    _check_tuned_environment(project_copy, tuned)

    # A second run adds trials to the same study; n_trials 0 refits its best without any.
    write_local_parameters(project_copy, tiny_blocks(n_trials=2))
    run_kedro(project_copy, "tuning")
    assert len(pd.read_csv(data / "08_reporting/tuning_trials.csv")) == 8
    write_local_parameters(project_copy, tiny_blocks(n_trials=0))
    run_kedro(project_copy, "tuning")
    assert len(pd.read_csv(data / "08_reporting/tuning_trials.csv")) == 8

    # Other data under the same study name is refused.
    raw = data / "01_raw/phone_prices.csv"
    pd.read_csv(raw).iloc[:-40].to_csv(raw, index=False)
    with pytest.raises(ValueError, match="Set a new tuning.study_name"):
        run_kedro(project_copy, "tuning")
