"""Nodes of the evaluation pipeline: test metrics, a linear baseline, plots."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from sklearn.metrics import ConfusionMatrixDisplay, classification_report, confusion_matrix

from neural_net_lab.engine.config import ColumnsParams, ModelParams
from neural_net_lab.engine.data import predict_logits, to_tensors
from neural_net_lab.engine.model import load_mlp
from neural_net_lab.linear_baseline import classification_scores, score_logistic_baseline

__all__ = [  # score_logistic_baseline is a node of this pipeline too
    "combine_metrics",
    "plot_training_curves",
    "predict_test_set",
    "score_logistic_baseline",
    "score_network",
]


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
    return classification_scores(labels, predicted, ""), report, figure


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
