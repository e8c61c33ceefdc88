"""Nodes of the evaluation pipeline: test metrics, a linear baseline, plots."""

from __future__ import annotations

from typing import Any, ClassVar

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import (
    ConfusionMatrixDisplay,
    accuracy_score,
    classification_report,
    confusion_matrix,
    precision_recall_fscore_support,
)

from neural_net_lab.engine.config import (
    Block,
    ColumnsParams,
    ModelParams,
    PositiveFloat,
    PositiveInt,
)
from neural_net_lab.engine.data import predict_logits, to_tensors
from neural_net_lab.engine.model import load_mlp


class BaselineParams(Block):
    """scikit-learn ``LogisticRegression`` settings for the linear reference."""

    C: PositiveFloat = 1.0
    max_iter: PositiveInt = 100


class EvaluationParams(Block):
    """The evaluation pipeline's settings (``evaluation``)."""

    block_path: ClassVar[str] = "evaluation"

    baseline: BaselineParams


def _scores(labels: np.ndarray, predicted: np.ndarray, prefix: str) -> dict[str, float]:
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, average="macro", zero_division=0
    )
    return {
        f"{prefix}test_accuracy": float(accuracy_score(labels, predicted)),
        f"{prefix}test_precision_macro": float(precision),
        f"{prefix}test_recall_macro": float(recall),
        f"{prefix}test_f1_macro": float(f1),
    }


def predict_test_set(
    model_state: dict[str, Any], test_set: pd.DataFrame, model: ModelParams, columns: ColumnsParams
) -> np.ndarray:
    """Predicted price range of every test phone, from the saved weights."""
    network = load_mlp(model_state, model)
    features, _ = to_tensors(test_set, columns.features)
    return predict_logits(network, features).argmax(dim=1).numpy()


def score_network(
    predicted: np.ndarray, test_set: pd.DataFrame, columns: ColumnsParams
) -> tuple[dict[str, float], dict[str, Any], plt.Figure]:
    """Test accuracy, macro precision/recall/F1, per-class report and confusion matrix plot."""
    labels = test_set[columns.target].to_numpy()
    classes = columns.classes
    report = classification_report(
        labels, predicted, labels=classes, output_dict=True, zero_division=0
    )
    figure, axis = plt.subplots(figsize=(5, 4.5))
    ConfusionMatrixDisplay(
        confusion_matrix(labels, predicted, labels=classes), display_labels=classes
    ).plot(ax=axis, colorbar=False, cmap="Blues")
    axis.set_title("Phone-price MLP: test confusion matrix")
    axis.set_xlabel("predicted price_range")
    axis.set_ylabel("true price_range")
    figure.tight_layout()
    return _scores(labels, predicted, ""), report, figure


def score_logistic_baseline(
    fit_set: pd.DataFrame, test_set: pd.DataFrame, columns: ColumnsParams, params: EvaluationParams
) -> dict[str, float]:
    """LogisticRegression trained on the network's training rows, scored on the test rows."""
    baseline = LogisticRegression(**params.baseline.model_dump())
    baseline.fit(fit_set[columns.features], fit_set[columns.target])
    predicted = baseline.predict(test_set[columns.features])
    return _scores(test_set[columns.target].to_numpy(), predicted, "baseline_")


def combine_metrics(
    network: dict[str, float], baseline: dict[str, float], history: dict[str, list[float]]
) -> tuple[dict[str, float], dict[str, dict[str, float]]]:
    """One metrics table for metrics.json, and the same values as MLflow metrics."""
    metrics = {**network, **baseline, "training_seconds": history["seconds"][0]}
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
