"""Train the MLP from catalog DataFrames and parameter blocks."""

from __future__ import annotations

import time

import pandas as pd
from torch import nn

from .config import ModelParams, TrainingParams
from .data import ModelInputs, accuracy, predict_logits, to_tensors
from .model import mlp_from_params
from .seeding import seed_everything
from .training import Member, train


def fit_classifier(
    fit_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    model: ModelParams,
    training: TrainingParams,
    schema: ModelInputs,
    *,
    description: str = "training",
) -> tuple[nn.Module, dict[str, list[float]], float]:
    """Builds the MLP from ``model`` (its widths derived) and trains it on the model inputs
    that ``schema`` names; returns model, history, seconds."""
    generator = seed_everything(training.seed)
    network = mlp_from_params(model)
    features, labels = to_tensors(fit_set, schema.inputs, schema.target)
    validation = None
    if len(validation_set):
        validation = to_tensors(validation_set, schema.inputs, schema.target)
    member = Member(network, features, labels, generator, validation, name=description)
    started = time.perf_counter()
    history = train([member], training)[0]
    return network, history, time.perf_counter() - started


def split_accuracy(model: nn.Module, frame: pd.DataFrame, schema: ModelInputs) -> float:
    """Accuracy of ``model`` on a DataFrame of standardized inputs and class codes."""
    features, labels = to_tensors(frame, schema.inputs, schema.target)
    return accuracy(predict_logits(model, features), labels)
