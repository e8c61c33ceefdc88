"""Nodes of the inference pipeline: validate new phones, price them with the trained model."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch

from neural_net_lab.engine.config import ColumnsParams, ModelParams
from neural_net_lab.engine.ensemble import Ensemble
from neural_net_lab.phone_table import DataValidationError, check_feature_table
from neural_net_lab.serving import scaled_network

logger = logging.getLogger(__name__)

SOURCE = "phones to price"


def validate_phones_to_price(raw: pd.DataFrame, columns: ColumnsParams) -> pd.DataFrame:
    """Checks the id and feature columns like training data; returns them, features as floats."""
    id_column = columns.id
    if id_column not in raw.columns:
        raise DataValidationError(f"{SOURCE}: missing id column '{id_column}'")
    if raw.empty:
        raise DataValidationError(f"{SOURCE}: the table has no rows")
    features = check_feature_table(raw, columns, SOURCE)
    ids = raw[id_column]
    if ids.isna().any():
        raise DataValidationError(
            f"{SOURCE}: column '{id_column}': {int(ids.isna().sum())} row(s) without an id"
        )
    duplicated = ids[ids.duplicated()].unique()
    if len(duplicated):
        raise DataValidationError(
            f"{SOURCE}: column '{id_column}': {len(duplicated)} id(s) used more than once "
            f"(e.g. {duplicated[:5].tolist()})"
        )
    extra = [c for c in raw.columns if c not in {*columns.features, id_column}]
    if extra:
        logger.warning("%s: ignoring extra column(s) %s", SOURCE, extra)
    return features.assign(**{id_column: ids})[[id_column, *columns.features]]


def price_phones(
    phones: pd.DataFrame,
    scaler: Mapping[str, Any],
    model_state: dict[str, torch.Tensor],
    model: ModelParams,
    columns: ColumnsParams,
) -> pd.DataFrame:
    """Each phone's id, predicted price range and one probability column per class, by the
    training pipeline's network with the persisted scaler."""
    return price_phones_with(phones, scaled_network(scaler, model_state, model, columns), columns)


def price_phones_with(
    phones: pd.DataFrame, classifier: Ensemble, columns: ColumnsParams
) -> pd.DataFrame:
    """Each phone's id, predicted price range and the classifier's mean probability per class
    (one scaled network, or a fold ensemble: the served model's arithmetic)."""
    classes = np.asarray(columns.classes)
    probabilities = classifier.probabilities(phones[list(columns.features)].to_numpy("float64"))
    if probabilities.shape[1] != len(classes):
        raise ValueError(
            f"model.n_classes is {probabilities.shape[1]} but columns.classes lists "
            f"{len(classes)} classes {classes.tolist()}"
        )
    predictions = pd.DataFrame(
        {
            columns.id: phones[columns.id].to_numpy(),
            columns.target: classes[probabilities.argmax(axis=1)],
        }
    )
    for i, label in enumerate(classes):
        predictions[f"probability_{label}"] = probabilities[:, i]
    logger.info(
        "Priced %d phones with %d network(s); predicted price ranges %s",
        len(predictions),
        len(classifier),
        predictions[columns.target].value_counts().sort_index().to_dict(),
    )
    return predictions
