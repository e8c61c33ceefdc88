"""evaluation: metrics, baseline, plots from real predictions."""

from __future__ import annotations

import math

import numpy as np
import pytest
from matplotlib import pyplot as plt

from neural_net_lab.engine.fit import fit_classifier
from neural_net_lab.linear_baseline import EvaluationParams
from neural_net_lab.pipelines.evaluation.nodes import (
    calibration_report,
    combine_metrics,
    compare_with_baseline,
    evaluated_network,
    importance_report,
    plot_training_curves,
    predict_test_set,
    score_logistic_baseline,
    score_network,
)


@pytest.fixture(scope="module")
def trained(model_inputs, table_schema, small_model, small_training):
    model, history, seconds = fit_classifier(
        model_inputs["fit_set"],
        model_inputs["validation_set"],
        small_model,
        small_training,
        table_schema,
    )
    return model.state_dict(), {**history, "seconds": [seconds]}


def test_network_scores_match_sklearn_definitions(trained, model_inputs, table_schema, small_model):
    state, _ = trained
    predicted = predict_test_set(state, model_inputs["test_set"], small_model, table_schema)
    labels = model_inputs["test_set"].price_range.to_numpy()
    metrics, report, figure = score_network(predicted, model_inputs["test_set"], table_schema)
    assert metrics["test_accuracy"] == pytest.approx(np.mean(predicted == labels))
    assert report["macro avg"]["f1-score"] == pytest.approx(metrics["test_f1_macro"])
    assert set(report) >= {"0", "1", "2", "3"}
    # The plot names the table and its label column (the phone table's, here).
    assert figure.axes[0].get_title() == "phone price table: test confusion matrix"
    assert figure.axes[0].get_xlabel() == "predicted price_range"


def test_logistic_baseline_beats_chance_by_far(model_inputs, table_schema):
    baseline, predicted = score_logistic_baseline(
        model_inputs["fit_set"],
        model_inputs["test_set"],
        table_schema,
        EvaluationParams(baseline={"max_iter": 2000}),
    )
    assert baseline["baseline_test_accuracy"] > 0.9
    labels = model_inputs["test_set"].price_range.to_numpy()
    assert baseline["baseline_test_accuracy"] == pytest.approx(np.mean(predicted == labels))


def test_the_network_against_the_baseline_on_the_same_rows(
    trained, model_inputs, table_schema, small_model
):
    state, _ = trained
    test_set = model_inputs["test_set"]
    predicted = predict_test_set(state, test_set, small_model, table_schema)
    _, baseline = score_logistic_baseline(
        model_inputs["fit_set"], test_set, table_schema, EvaluationParams(baseline={})
    )
    result = compare_with_baseline(predicted, baseline, test_set, table_schema)
    labels = test_set.price_range.to_numpy()
    network_right, baseline_right = predicted == labels, baseline == labels
    for name, right in (
        ("test_accuracy", network_right),
        ("baseline_test_accuracy", baseline_right),
    ):
        assert result[f"{name}_ci_low"] < np.mean(right) < result[f"{name}_ci_high"]
    assert result["test_difference_vs_baseline"] == pytest.approx(
        np.mean(network_right) - np.mean(baseline_right)
    )
    # The exact McNemar test on the rows where exactly one is right, computed here by hand.
    only_network = int(np.sum(network_right & ~baseline_right))
    only_baseline = int(np.sum(baseline_right & ~network_right))
    discordant = only_network + only_baseline
    tail = sum(math.comb(discordant, k) for k in range(min(only_network, only_baseline) + 1))
    assert result["mcnemar_p_value_vs_baseline"] == pytest.approx(
        min(1.0, 2 * tail / 2**discordant)
    )
    same = compare_with_baseline(predicted, predicted, test_set, table_schema)
    assert (same["mcnemar_p_value_vs_baseline"], same["test_difference_vs_baseline"]) == (1, 0)


def test_combined_metrics_and_curves(trained):
    _, history = trained
    metrics, mlflow_metrics = combine_metrics(
        {"test_accuracy": 0.9},
        {"baseline_test_accuracy": 0.95},
        {"mcnemar_p_value_vs_baseline": 0.5},
        history,
        {"expected_calibration_error": 0.04},
    )
    assert metrics["final_val_accuracy"] == history["val_accuracy"][-1]
    assert mlflow_metrics["test_accuracy"] == {"value": 0.9, "step": 0}
    assert mlflow_metrics["expected_calibration_error"] == {"value": 0.04, "step": 0}
    assert metrics["mcnemar_p_value_vs_baseline"] == 0.5
    figure = plot_training_curves(history)
    assert len(figure.axes[0].lines) == 2  # train and validation loss


PICTURES = EvaluationParams(
    baseline={"max_iter": 2000}, importance={"n_repeats": 3, "seed": 5}, calibration={"bins": 8}
)


def test_feature_importance_of_the_phone_network(
    trained, model_inputs, table_schema, small_model, close_figures
):
    state, _ = trained
    network = evaluated_network(state, model_inputs["scaler"], small_model, table_schema)
    node_inputs = (network, model_inputs["test_split"], table_schema, PICTURES)
    importance, figure = importance_report(*node_inputs)
    # The baseline is the network's own test accuracy (the raw split, encoded and scaled).
    predicted = predict_test_set(state, model_inputs["test_set"], small_model, table_schema)
    labels = model_inputs["test_set"].price_range.to_numpy()
    assert importance["baseline_accuracy"] == pytest.approx(np.mean(predicted == labels))
    rows = importance["features"]
    assert sorted(row["feature"] for row in rows) == sorted(table_schema.features)
    assert [r["importance_mean"] for r in rows] == sorted(
        (r["importance_mean"] for r in rows), reverse=True
    )
    # ram drives the phone table's price range (data_generation): even two epochs learn it.
    assert rows[0]["feature"] == "ram" and rows[0]["importance_mean"] > 0.1
    assert (importance["n_repeats"], importance["seed"]) == (3, 5)
    assert importance_report(*node_inputs)[0] == importance
    axis = figure.axes[0]
    assert axis.get_title().startswith("phone price table: permutation importance (1 network)")
    assert axis.get_yticklabels()[-1].get_text() == "ram"  # the top bar


def test_calibration_of_the_phone_network(
    trained, model_inputs, table_schema, small_model, close_figures
):
    state, _ = trained
    network = evaluated_network(state, model_inputs["scaler"], small_model, table_schema)
    result, figure = calibration_report(network, model_inputs["test_split"], table_schema, PICTURES)
    assert result["bins"] == 8 and len(result["top_class"]) == 8
    assert sum(b["count"] for b in result["top_class"]) == len(model_inputs["test_split"])
    assert set(result["one_vs_rest"]) == {"0", "1", "2", "3"}  # the table's labels
    # The ECE recomputed from the per-bin table the JSON holds.
    filled = [b for b in result["top_class"] if b["count"]]
    n = len(model_inputs["test_split"])
    by_bins = sum(b["count"] / n * abs(b["accuracy"] - b["confidence"]) for b in filled)
    assert result["expected_calibration_error"] == pytest.approx(by_bins)
    assert 0 <= result["expected_calibration_error"] <= 1
    assert figure.axes[0].get_title() == "phone price table: test reliability diagram (1 network)"


@pytest.fixture
def close_figures():
    yield
    plt.close("all")
