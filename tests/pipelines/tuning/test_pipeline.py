"""`kedro run --pipelines tuning` in real Kedro sessions: a real LocalCluster of 2 worker
processes, a real journal file and a real MLflow SQLite store in a temporary folder."""

from __future__ import annotations

import json
import os

import mlflow
import numpy as np
import optuna
import pandas as pd
import pytest
import torch
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from neural_net_lab.engine.config import ModelParams
from neural_net_lab.engine.data import predict_logits
from neural_net_lab.engine.model import load_mlp
from tests.conftest import FEATURES, mlflow_client, run_kedro

from .conftest import tiny_blocks, write_local_parameters


def _children(client, parent_id):
    experiment = client.get_experiment_by_name("neural_net_lab")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [r for r in runs if r.data.tags.get("mlflow.parentRunId") == parent_id]


def _check_baseline_runs(client, parent_id, metrics):
    """One child run per tuned baseline with its chosen params and CV and test accuracy."""
    runs = {
        r.info.run_name: r
        for r in _children(client, parent_id)
        if "optuna.trial_number" not in r.data.tags
    }
    assert set(runs) == set(metrics["baselines"]) and runs
    for name, scores in metrics["baselines"].items():
        run = runs[name]
        assert run.info.status == "FINISHED"
        assert run.data.metrics["mean_accuracy"] == pytest.approx(scores["cv_accuracy"])
        assert run.data.metrics["test_accuracy"] == pytest.approx(scores["test_accuracy"])
        for key, value in scores["params"].items():
            assert run.data.params[f"best.{key}"] == str(value)


def _check_report(metrics, tuned, data):
    """Every candidate side by side, the served one named, the verdict in words."""
    assert metrics["final"] == tuned["final"] == "ensemble"
    for name in ("ensemble", "refit", "default", "untuned_baseline", *metrics["baselines"]):
        scores = metrics["baselines"].get(name) or metrics[name]
        assert {"cv_accuracy", "cv_std", "test_accuracy"} <= set(scores), name
        assert 0.25 < scores["test_accuracy"] <= 1, name
    assert metrics["tuned"]["test_accuracy"] == metrics["ensemble"]["test_accuracy"]
    assert metrics["test_accuracy"] == metrics["ensemble"]["test_accuracy"]
    # The rebuilt seed-0 fold networks are the trial's own: the same held-out accuracies.
    assert metrics["ensemble"]["reproduced"] is True
    assert metrics["ensemble"]["fold_accuracy"] == tuned["fold_accuracy"]
    assert metrics["ensemble"]["members"] == 2 * tuned["ensemble_seeds"]
    assert metrics["refit"]["cv_accuracy"] == metrics["ensemble"]["cv_accuracy"]
    # Every score has its interval, and the interval holds the score.
    for name in ("ensemble", "refit", "untuned_baseline", *metrics["baselines"]):
        scores = metrics["baselines"].get(name) or metrics[name]
        assert scores["cv_ci"][0] <= scores["cv_accuracy"] <= scores["cv_ci"][1], name
        assert scores["test_ci"][0] <= scores["test_accuracy"] <= scores["test_ci"][1], name
    # The served network against each tuned baseline on 3 fresh repetitions of the 2 folds.
    comparison = metrics["comparison"]
    assert (comparison["repeats"], comparison["folds"], comparison["members_per_fold"]) == (
        3,
        2,
        tuned["ensemble_seeds"],
    )
    assert set(comparison["pairs"]) == set(metrics["baselines"])
    assert len(comparison["repeated_cv"]["network"]["fold_accuracy"]) == 6
    words = {"beats", "trails", "no detectable difference at 95%"}
    for name, pair in comparison["pairs"].items():
        assert {pair["cv"]["verdict"], pair["test"]["verdict"]} <= words
        assert pair["cv"]["folds"] == 6 and pair["cv"]["test_train_ratio"] == pytest.approx(1.0)
        # McNemar pairs the same test rows whose accuracies the table reports.
        assert pair["test"]["difference"] == pytest.approx(
            metrics["ensemble"]["test_accuracy"] - metrics["baselines"][name]["test_accuracy"]
        )
        assert pair["test"]["difference"] == pytest.approx(
            (pair["test"]["a_only"] - pair["test"]["b_only"]) / pair["test"]["rows"]
        )
        assert metrics["verdict"]["pairs"][name] == {
            "cv": pair["cv"]["verdict"],
            "test": pair["test"]["verdict"],
        }
    best = comparison["best_baseline"]
    assert comparison["repeated_cv"][best]["accuracy"] == max(
        comparison["repeated_cv"][n]["accuracy"] for n in metrics["baselines"]
    )
    summary = (data / "08_reporting/tuning_summary.md").read_text()
    assert metrics["verdict"]["headline"] in summary
    assert all(line in summary for line in metrics["verdict"]["lines"])
    assert "chosen on these same rows" in summary
    assert "LogisticRegression C=1 (untuned)" in summary
    assert "leads" not in summary and "does not beat" not in summary


def _check_child_runs(client, parent_id, data):
    """One child run per trial with the trial's state, times, values and worker."""
    children = [r for r in _children(client, parent_id) if "optuna.trial_number" in r.data.tags]
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


def _check_tuned_inference(project_copy, model, members):
    """inference.network=tuned prices phones with the fold ensemble, as the served @tuned
    model does, and both equal the members' mean probabilities computed by hand."""
    data = project_copy / "data"
    run_kedro(project_copy, "inference", {"inference.network": "tuned"})
    priced = pd.read_csv(data / "07_model_output/price_predictions.csv")
    phones = pd.read_csv(data / "01_raw/phones_to_price.csv")
    mlflow.set_tracking_uri(os.environ["MLFLOW_TRACKING_URI"])  # the run's store, not a stale one
    served = mlflow.pyfunc.load_model("models:/phone_price_classifier@tuned").predict(phones)
    columns = ["id", "price_range", *(f"probability_{c}" for c in range(4))]
    assert priced[columns].to_numpy() == pytest.approx(served[columns].to_numpy(), abs=1e-9)

    state = torch.load(data / "06_models/tuned_ensemble.pt", weights_only=True)
    raw = torch.from_numpy(phones[FEATURES].to_numpy("float64"))
    by_hand = []
    for k in range(members):
        network = load_mlp(
            {
                key.removeprefix(f"{k}.network."): value
                for key, value in state.items()
                if key.startswith(f"{k}.network.")
            },
            model,
        )
        scaled = ((raw - state[f"{k}.mean"]) / state[f"{k}.scale"]).float()
        by_hand.append(torch.softmax(predict_logits(network, scaled), dim=1).double().numpy())
    assert priced[columns[2:]].to_numpy() == pytest.approx(np.mean(by_hand, axis=0), abs=1e-6)


def _check_tuned_environment(project_copy, tuned):
    """`kedro run --env tuned`: the default pipelines train with the tuned blocks."""
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="tuned") as session:
        session.run()
    state = torch.load(project_copy / "data/06_models/phone_price_model.pt")
    assert state["0.weight"].shape[0] == tuned["model"]["hidden_dims"][0]
    history = json.loads((project_copy / "data/08_reporting/training_history.json").read_text())
    assert len(history["train_loss"]) == tuned["training"]["epochs"]


def test_tuning_runs_resumes_refits_and_keeps_other_data_apart(project_copy):
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
    assert metrics["tuned"]["cv_accuracy"] >= metrics["default"]["cv_accuracy"]
    tuned = yaml.safe_load((data / "06_models/tuned_parameters.yml").read_text())
    assert tuned["trial"] == metrics["best_trial"] and set(tuned) >= {"model", "training"}
    _check_report(metrics, tuned, data)
    _check_baseline_runs(client, parent.info.run_id, metrics)
    for name in ("ensemble", "untuned_baseline", "baseline.logistic_regression"):
        assert parent.data.metrics[f"tuning.{name}_test_accuracy"] == pytest.approx(
            (metrics["baselines"]["logistic_regression"] if "." in name else metrics[name])[
                "test_accuracy"
            ]
        )
    assert (data / "06_models/tuned_phone_price_model.pt").exists()
    assert not (data / "06_models/phone_price_model.pt").exists()  # the default training's file
    assert yaml.safe_load((project_copy / "conf/tuned/parameters.yml").read_text()) == {
        "model": tuned["model"],
        "training": tuned["training"],
    }
    pictures = ("tuning_comparison.png", "tuned_feature_importance.png", "tuned_calibration.png")
    for name in ("tuning_summary.md", "tuning_history.png", "tuning_importances.png", *pictures):
        assert (data / "08_reporting" / name).stat().st_size > 0
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert set(pictures) | {"tuned_feature_importance.json", "tuned_calibration.json"} <= artifacts
    # The run's page in the MLflow UI reads who won (its description).
    note = parent.data.tags["mlflow.note.content"]
    assert metrics["verdict"]["headline"] in note and all(
        line in note for line in metrics["verdict"]["lines"]
    )
    best = metrics["comparison"]["best_baseline"]
    assert parent.data.metrics[f"tuning.vs.{best}.cv_p_value"] == pytest.approx(
        metrics["comparison"]["pairs"][best]["cv"]["p_value"]
    )
    importance = json.loads((data / "08_reporting/tuned_feature_importance.json").read_text())
    assert {f["feature"] for f in importance["features"]} == set(FEATURES)
    version = client.get_model_version_by_alias("phone_price_classifier", "tuned")
    served = json.loads((data / "06_models/tuned_served_model.json").read_text())
    assert str(served["registered_model_version"]) == str(version.version)

    model = ModelParams.model_validate(tuned["model"])
    _check_tuned_inference(project_copy, model, metrics["ensemble"]["members"])
    _check_tuned_environment(project_copy, tuned)

    # A second run adds trials to the same study; n_trials 0 refits its best without any.
    write_local_parameters(project_copy, tiny_blocks(n_trials=2))
    run_kedro(project_copy, "tuning")
    assert len(pd.read_csv(data / "08_reporting/tuning_trials.csv")) == 8
    write_local_parameters(project_copy, tiny_blocks(n_trials=0))
    run_kedro(project_copy, "tuning")
    assert len(pd.read_csv(data / "08_reporting/tuning_trials.csv")) == 8

    # Other data under the same study name goes to a sibling study named after the data
    # (tests/pipelines/tuning/test_study_names.py): with n_trials 0 there is none to refit.
    raw = data / "01_raw/phone_prices.csv"
    pd.read_csv(raw).iloc[:-40].to_csv(raw, index=False)
    with pytest.raises(ValueError, match=r"n_trials is 0 but the study 'test-[0-9a-f]{8}' does"):
        run_kedro(project_copy, "tuning")


@pytest.mark.parametrize(
    ("baseline", "message"),
    [
        (
            {"estimator": "sklearn.linear_model.LogisticRegresion"},
            r"tuning\.baselines\.bad\.estimator: cannot import 'sklearn\.linear_model\.Logistic",
        ),
        (
            {"estimator": "sklearn.svm.SVC", "grid": {"gama": [0.1]}},
            r"tuning\.baselines\.bad\.grid\.gama: SVC takes no",
        ),
    ],
)
def test_a_bad_baseline_stops_the_tuning_run_before_any_trial(project_copy, baseline, message):
    write_local_parameters(project_copy, tiny_blocks(baselines={"bad": baseline}))
    with pytest.raises(ValueError, match=message):
        run_kedro(project_copy, "tuning")
    data = project_copy / "data"
    assert not (data / "07_model_output/tuning_study.journal").exists()
    assert not (data / "08_reporting/tuning_trials.csv").exists()
