"""Nodes of the training pipeline."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
from torch import nn

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.engine.fit import fit_classifier
from neural_net_lab.engine.tracking import history_as_metrics
from neural_net_lab.serving import ServedModelParams, log_served, scaled_network
from neural_net_lab.table import TableSchema, stratified_split

logger = logging.getLogger(__name__)


def split_validation(
    train_set: pd.DataFrame, schema: TableSchema, training: TrainingParams, model: ModelParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carves a stratified validation share off the training split (0 → an empty one).

    The first node of a training run: a width in ``model`` that the table does not give
    stops the run here, before anything is written or trained."""
    schema.network(model)
    if training.validation_share == 0:
        return train_set, train_set.iloc[:0]
    return stratified_split(
        train_set, schema.target, training.seed, test_size=training.validation_share
    )


def train_model(
    fit_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    model: ModelParams,
    training: TrainingParams,
    schema: TableSchema,
) -> tuple[nn.Module, dict[str, list[float]]]:
    """Trains the MLP with the widths the table gives; returns it and its per-epoch history."""
    network, history, seconds = fit_classifier(
        fit_set, validation_set, schema.network(model), training, schema
    )
    return network, {**history, "seconds": [seconds]}


def history_to_mlflow(history: dict[str, list[float]]) -> dict[str, list[dict[str, float]]]:
    """Per-epoch losses and accuracies as MLflow metric histories (one step per epoch)."""
    return history_as_metrics({k: v for k, v in history.items() if k != "seconds"})


def log_served_model(  # noqa: PLR0917 - Kedro passes a node's inputs by position
    model_state: dict[str, Any],
    scaler: Mapping[str, Any],
    raw_table: pd.DataFrame,
    model: ModelParams,
    schema: TableSchema,
    served_model: ServedModelParams,
) -> dict[str, Any]:
    """Logs encoding + scaler + network + labels as one MLflow model and registers it;
    skipped without a run."""
    network = scaled_network(scaler, model_state, schema.network(model), schema)
    return log_served(network, raw_table, schema, served_model)
