"""evaluation: metrics, baseline, plots from real predictions."""

from __future__ import annotations

import numpy as np
import pytest

from neural_net_lab.engine.fit import fit_classifier
from neural_net_lab.linear_baseline import EvaluationParams
from neural_net_lab.pipelines.evaluation.nodes import (
    combine_metrics,
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
    baseline = score_logistic_baseline(
        model_inputs["fit_set"],
        model_inputs["test_set"],
        table_schema,
        EvaluationParams(baseline={"max_iter": 2000}),
    )
    assert baseline["baseline_test_accuracy"] > 0.9


def test_combined_metrics_and_curves(trained):
    _, history = trained
    metrics, mlflow_metrics = combine_metrics(
        {"test_accuracy": 0.9}, {"baseline_test_accuracy": 0.95}, history
    )
    assert metrics["final_val_accuracy"] == history["val_accuracy"][-1]
    assert mlflow_metrics["test_accuracy"] == {"value": 0.9, "step": 0}
    figure = plot_training_curves(history)
    assert len(figure.axes[0].lines) == 2  # train and validation loss
