"""Train the phone-price MLP from catalog DataFrames and parameter blocks."""

from __future__ import annotations

import copy
import time
from collections.abc import Mapping
from typing import Any

import pandas as pd
from torch import nn

from .augmentation import build_augmentation
from .data import accuracy, predict_logits, to_tensors
from .model import mlp_from_params
from .optim import build_optimizer, validate_optimizer_config
from .seeding import seed_everything
from .training import train

TRAINING_KEYS = {"seed", "epochs", "batch_size", "validation_share", "optimizer", "gradients",
                 "threads", "l1_lambda", "augmentation", "progress"}  # fmt: skip


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merges ``overrides`` into a copy of ``base`` (a variant's changes to defaults).

    A nested ``optimizer`` block is replaced whole when its name changes: Adam's betas make
    no sense for SGD.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in (overrides or {}).items():
        keep = isinstance(value, Mapping) and isinstance(merged.get(key), Mapping)
        if keep and key == "optimizer" and value.get("name", merged[key].get("name")) != merged[key].get("name"):
            keep = False
        merged[key] = merge(merged[key], value) if keep else copy.deepcopy(value)
    return merged


def validate_training_params(training: Mapping[str, Any], where: str = "training") -> None:
    """Checks a training block before any work starts, naming the bad parameter."""
    unknown = sorted(set(training) - TRAINING_KEYS)
    if unknown:
        raise ValueError(f"{where}: unknown setting(s) {unknown}; expected some of {sorted(TRAINING_KEYS)}")
    for key in ("epochs", "batch_size", "seed"):
        value = training.get(key)
        if isinstance(value, bool) or not isinstance(value, int) or value < (0 if key == "seed" else 1):
            raise ValueError(f"{where}.{key} must be a {'non-negative' if key == 'seed' else 'positive'} integer, got {value!r}")
    validate_optimizer_config(training.get("optimizer"), f"{where}.optimizer")
    build_augmentation(training.get("augmentation"), f"{where}.augmentation")
    l1 = training.get("l1_lambda", 0.0)
    if isinstance(l1, bool) or not isinstance(l1, (int, float)) or l1 < 0:
        raise ValueError(f"{where}.l1_lambda must be a non-negative number, got {l1!r}")


def fit_classifier(
    fit_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    model_params: Mapping[str, Any],
    training: Mapping[str, Any],
    columns: Mapping[str, Any],
    description: str = "training",
    where: str = "training",
) -> tuple[nn.Module, dict[str, list[float]], float]:
    """Builds the MLP from ``model_params`` and trains it; returns model, history, seconds."""
    validate_training_params(training, where)
    generator = seed_everything(training["seed"])
    model = mlp_from_params(model_params)
    features, labels = to_tensors(fit_set, columns["features"], columns["target"])
    validation = (
        to_tensors(validation_set, columns["features"], columns["target"])
        if len(validation_set) else None
    )  # fmt: skip
    trainable = [p for p in model.parameters() if p.requires_grad]
    optimizer = build_optimizer(trainable, training["optimizer"], f"{where}.optimizer")
    started = time.perf_counter()
    history = train(
        model, optimizer, features, labels,
        epochs=training["epochs"], batch_size=training["batch_size"], generator=generator,
        validation=validation, l1_lambda=training.get("l1_lambda", 0.0),
        augmentation=build_augmentation(training.get("augmentation"), f"{where}.augmentation"),
        gradients=training.get("gradients", "auto"), threads=training.get("threads", 1),
        progress=training.get("progress", True), description=description,
    )  # fmt: skip
    return model, history, time.perf_counter() - started


def split_accuracy(model: nn.Module, frame: pd.DataFrame, columns: Mapping[str, Any]) -> float:
    """Accuracy of ``model`` on a DataFrame of standardized features and labels."""
    features, labels = to_tensors(frame, columns["features"], columns["target"])
    return accuracy(predict_logits(model, features), labels)
