"""Train the phone-price MLP from catalog DataFrames and parameter blocks."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pandas as pd
from torch import nn

from .augmentation import build_augmentation
from .config import ColumnsParams, ModelParams, TrainingParams, as_params
from .data import accuracy, predict_logits, to_tensors
from .model import mlp_from_params
from .optim import build_optimizer
from .seeding import seed_everything
from .training import train


def fit_classifier(
    fit_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    model: ModelParams | Mapping[str, Any],
    training: TrainingParams | Mapping[str, Any],
    columns: ColumnsParams | Mapping[str, Any],
    *,
    description: str = "training",
) -> tuple[nn.Module, dict[str, list[float]], float]:
    """Builds the MLP from ``model`` and trains it; returns model, history, seconds."""
    training = as_params(TrainingParams, training)
    columns = as_params(ColumnsParams, columns)
    generator = seed_everything(training.seed)
    network = mlp_from_params(model)
    features, labels = to_tensors(fit_set, columns.features, columns.target)
    validation = None
    if len(validation_set):
        validation = to_tensors(validation_set, columns.features, columns.target)
    trainable = [p for p in network.parameters() if p.requires_grad]
    optimizer = build_optimizer(trainable, training.optimizer)
    started = time.perf_counter()
    history = train(
        network,
        optimizer,
        features,
        labels,
        epochs=training.epochs,
        batch_size=training.batch_size,
        generator=generator,
        validation=validation,
        l1_lambda=training.l1_lambda,
        augmentation=build_augmentation(training.augmentation),
        gradients=training.gradients,
        threads=training.threads,
        progress=training.progress,
        description=description,
    )
    return network, history, time.perf_counter() - started


def split_accuracy(
    model: nn.Module, frame: pd.DataFrame, columns: ColumnsParams | Mapping[str, Any]
) -> float:
    """Accuracy of ``model`` on a DataFrame of standardized features and labels."""
    columns = as_params(ColumnsParams, columns)
    features, labels = to_tensors(frame, columns.features, columns.target)
    return accuracy(predict_logits(model, features), labels)
