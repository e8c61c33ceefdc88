"""Nodes of the evaluation pipeline: test metrics, a linear baseline and how sure the test
split makes the comparison (``comparison``), plots, and the pictures that read the network
(feature importance, calibration: ``model_pictures``)."""

from __future__ import annotations

import logging
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from sklearn.metrics import ConfusionMatrixDisplay, classification_report, confusion_matrix

from neural_net_lab.comparison import mcnemar_exact, said, wilson_interval
from neural_net_lab.engine.config import ModelParams
from neural_net_lab.engine.data import predict_logits, to_tensors
from neural_net_lab.engine.ensemble import Ensemble
from neural_net_lab.engine.model import load_mlp
from neural_net_lab.linear_baseline import (
    EvaluationParams,
    classification_scores,
    score_logistic_baseline,
)
from neural_net_lab.model_pictures import (
    calibration,
    feature_importance,
    importance_figure,
    reliability_figure,
)
from neural_net_lab.serving import scaled_network
from neural_net_lab.table import TableSchema

__all__ = [  # score_logistic_baseline is a node of this pipeline too
    "combine_metrics",
    "compare_with_baseline",
    "plot_training_curves",
    "calibration_report",
    "evaluated_network",
    "importance_report",
    "predict_test_set",
    "score_logistic_baseline",
    "score_network",
]

logger = logging.getLogger(__name__)


def predict_test_set(
    model_state: dict[str, Any], test_set: pd.DataFrame, model: ModelParams, schema: TableSchema
) -> np.ndarray:
    """Predicted class code of every test row, from the saved weights."""
    network = load_mlp(model_state, schema.network(model))
    features, _ = to_tensors(test_set, schema.inputs)
    return predict_logits(network, features).argmax(dim=1).numpy()


def score_network(
    predicted: np.ndarray, test_set: pd.DataFrame, schema: TableSchema
) -> tuple[dict[str, float], dict[str, Any], plt.Figure]:
    """Test accuracy, macro precision/recall/F1, per-class report and confusion matrix plot,
    the classes named by the table's own labels."""
    codes = test_set[schema.target].to_numpy()
    every = list(range(schema.n_classes))
    names = [str(label) for label in schema.classes]
    report = classification_report(
        codes, predicted, labels=every, target_names=names, output_dict=True, zero_division=0
    )
    figure, axis = plt.subplots(figsize=(5, 4.5))
    ConfusionMatrixDisplay(
        confusion_matrix(codes, predicted, labels=every), display_labels=names
    ).plot(ax=axis, colorbar=False, cmap="Blues")
    axis.set_title(f"{schema.name}: test confusion matrix")
    axis.set_xlabel(f"predicted {schema.target}")
    axis.set_ylabel(f"true {schema.target}")
    figure.tight_layout()
    return classification_scores(codes, predicted, ""), report, figure


def evaluated_network(
    model_state: dict[str, Any], scaler: dict[str, Any], model: ModelParams, schema: TableSchema
) -> Ensemble:
    """The saved network with the persisted scaler: raw feature rows in, probabilities out
    (an ensemble of one), as the served model applies it."""
    return scaled_network(scaler, model_state, schema.network(model), schema)


def _read(classifier: Ensemble) -> str:
    return "1 network" if len(classifier) == 1 else f"{len(classifier)} networks averaged"


def importance_report(
    classifier: Ensemble, test_split: pd.DataFrame, schema: TableSchema, params: EvaluationParams
) -> tuple[dict[str, Any], plt.Figure]:
    """Permutation importance of the table's feature columns on the raw test split, as JSON
    and as a bar chart."""
    importance = feature_importance(
        classifier,
        test_split,
        schema,
        n_repeats=params.importance.n_repeats,
        seed=params.importance.seed,
    )
    title = f"{schema.name}: permutation importance ({_read(classifier)})"
    return importance, importance_figure(importance, title)


def calibration_report(
    classifier: Ensemble, test_split: pd.DataFrame, schema: TableSchema, params: EvaluationParams
) -> tuple[dict[str, Any], plt.Figure]:
    """The test probabilities against what happened: the expected calibration error, the
    reliability per bin and per class, and the reliability diagram."""
    result = calibration(classifier, test_split, schema, bins=params.calibration.bins)
    title = f"{schema.name}: test reliability diagram ({_read(classifier)})"
    return result, reliability_figure(result, title)


def compare_with_baseline(
    predicted: np.ndarray,
    baseline_predicted: np.ndarray,
    test_set: pd.DataFrame,
    schema: TableSchema,
) -> dict[str, float]:
    """How sure the test split makes us: each test accuracy's Wilson 95% interval, and the
    network against the LogisticRegression on the same rows (exact McNemar); the verdict in
    words goes to the log."""
    codes = test_set[schema.target].to_numpy()
    network, baseline = predicted == codes, baseline_predicted == codes
    intervals = {
        name: wilson_interval(int(correct.sum()), len(correct))
        for name, correct in (("test_accuracy", network), ("baseline_test_accuracy", baseline))
    }
    paired = mcnemar_exact(network, baseline)
    logger.info(
        "On the %d test rows the network %s (difference %+.4f, exact McNemar p = %.3g: %d "
        "row(s) only the network gets right, %d only the baseline)",
        len(codes),
        said(paired["verdict"], "the LogisticRegression baseline"),
        paired["difference"],
        paired["p_value"],
        paired["a_only"],
        paired["b_only"],
    )
    scores = {
        f"{name}_ci_{end}": interval[f"ci_{end}"]
        for name, interval in intervals.items()
        for end in ("low", "high")
    }
    return scores | {
        "test_difference_vs_baseline": paired["difference"],
        "mcnemar_p_value_vs_baseline": paired["p_value"],
    }


def combine_metrics(
    network: dict[str, float],
    baseline: dict[str, float],
    paired: dict[str, float],
    history: dict[str, list[float]],
    calibration_result: dict[str, Any],
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """One metrics table for metrics.json, and the same values as MLflow metrics."""
    metrics = {
        **network,
        **baseline,
        **paired,
        "expected_calibration_error": calibration_result["expected_calibration_error"],
        "training_seconds": history["seconds"][0],
    }
    if history.get("val_accuracy"):
        metrics["final_val_accuracy"] = history["val_accuracy"][-1]
    return metrics, {key: {"value": value, "step": 0} for key, value in metrics.items()}


def plot_training_curves(history: dict[str, list[float]]) -> plt.Figure:
    """Training and validation loss per epoch, and validation accuracy."""
    epochs = np.arange(1, len(history["train_loss"]) + 1)
    figure, (loss_axis, accuracy_axis) = plt.subplots(1, 2, figsize=(10, 4))
    loss_axis.plot(epochs, history["train_loss"], label="train")
    if history.get("val_loss"):
        loss_axis.plot(epochs, history["val_loss"], label="validation")
        accuracy_axis.plot(epochs, history["val_accuracy"], color="tab:green")
    loss_axis.set(title="Cross-entropy loss", xlabel="epoch", ylabel="loss", yscale="log")
    loss_axis.legend()
    accuracy_axis.set(title="Validation accuracy", xlabel="epoch", ylabel="accuracy")
    figure.tight_layout()
    return figure
