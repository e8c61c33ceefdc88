"""A table unlike the phone table through the tuning nodes, configured by its label column
alone: string labels, a text column (one-hot), an ``ID`` column. A tiny study on one worker,
the choice, the fold ensemble, the refits, a baseline and the scores."""

from __future__ import annotations

import numpy as np
import pytest

from neural_net_lab import model_pictures
from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.linear_baseline import EvaluationParams
from neural_net_lab.pipelines.tuning import nodes
from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.table import encode_features

from .conftest import tiny_blocks

BASELINE = {
    "estimator": "sklearn.linear_model.LogisticRegression",
    "settings": {"max_iter": 1000},
    "grid": {"C": [1.0]},
}


def test_a_table_with_string_labels_and_a_text_column_is_tuned_and_scored(clinic, tmp_path):
    schema, test = clinic["schema"], clinic["test_split"]
    blocks = tiny_blocks(
        n_trials=2,
        ensemble_seeds=1,
        baselines={"logistic_regression": BASELINE},
        dask={"n_workers": 1, "dashboard_address": None},
    )
    tuning = TuningParams.model_validate(blocks["tuning"])
    training = TrainingParams.model_validate(blocks["training"])
    cv_data, model = nodes.prepare_folds(
        clinic["train_split"],
        schema,
        tuning,
        ModelParams.model_validate(blocks["model"]),
        training,
    )
    # 3 numeric columns and 3 one-hot inputs; 3 classes coded 0…2 in sorted label order.
    assert schema.classes == ["benign", "malignant", "suspect"]
    assert (model.input_dim, model.n_classes) == (6, 3)
    assert cv_data["features"].dtype == np.float64 and cv_data["features"].shape[1] == 6
    assert (cv_data["features"][:, 3:].sum(axis=1) == 1).all()
    assert cv_data["labels"].dtype == np.int64 and set(cv_data["labels"]) == {0, 1, 2}

    trials, study_name = nodes.run_study(
        cv_data=cv_data,
        storage={"path": str(tmp_path / "study.journal")},
        tuning=tuning,
        model=model,
        training=training,
    )
    assert study_name == "test" and trials[0].state.name == "COMPLETE"
    tuned = nodes.choose_configuration(trials, model, training, tuning)
    assert (tuned.model.input_dim, tuned.model.n_classes) == (6, 3)  # the file records them

    ensemble, check = nodes.rebuild_fold_networks(cv_data, tuned, tuning)
    assert check["reproduced"]
    refit = nodes.refit_tuned(clinic["train_set"], tuned, schema)
    baselines, test_rows = nodes.tune_baselines(cv_data, test, schema, tuning)
    repeated = nodes.score_repeated_folds(cv_data, tuned, baselines, tuning)
    metrics, mlflow_metrics = nodes.score_tuning(
        ensemble=ensemble,
        ensemble_check=check,
        refit_network=refit,
        default_network=nodes.refit(clinic["train_set"], model, training, schema),
        tuned=tuned,
        trials=trials,
        study_name=study_name,
        cv_data=cv_data,
        baselines=baselines,
        baseline_test_rows=test_rows,
        repeated=repeated,
        test_split=test,
        scaler=clinic["scaler"],
        schema=schema,
        evaluation=EvaluationParams.model_validate({"baseline": {"C": 1.0, "max_iter": 1000}}),
        tuning=tuning,
        model=model,
    )
    # The test accuracy compares class codes; by hand, the predicted labels against the
    # test split's own.
    predicted = schema.labels(
        ensemble.probabilities(encode_features(test, schema, "test")).argmax(1)
    )
    assert metrics["ensemble"]["test_accuracy"] == pytest.approx(
        np.mean(predicted == test["diagnosis"].to_numpy()), abs=1e-12
    )
    assert set(predicted) <= set(schema.classes)
    # A learnable table: the linear baselines find its signal.
    assert metrics["baselines"]["logistic_regression"]["test_accuracy"] > 0.6
    assert metrics["untuned_baseline"]["test_accuracy"] > 0.6
    assert all(0 <= v["value"] <= 1 for k, v in mlflow_metrics.items() if "accuracy" in k)
    summary = nodes.summary_report(nodes.trials_report(trials), metrics)
    assert "Study `test`: 2 trials" in summary
    assert metrics["verdict"]["headline"] in summary
    # The served model's pictures name the table's own columns: the text column once.
    classifier = nodes.served_classifier(ensemble, refit, tuned, clinic["scaler"], schema)
    importance = model_pictures.feature_importance(classifier, test, schema, n_repeats=2, seed=0)
    assert [f["feature"] for f in importance["features"]].count("shape") == 1
    assert {f["feature"] for f in importance["features"]} == set(schema.features)
    calibration = model_pictures.calibration(classifier, test, schema, bins=5)
    assert set(calibration["one_vs_rest"]) == set(schema.classes)
