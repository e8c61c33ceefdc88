"""Nodes of the inference pipeline: check new rows, classify them with the trained model."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch

from neural_net_lab.engine.config import ModelParams
from neural_net_lab.engine.ensemble import Ensemble
from neural_net_lab.serving import scaled_network
from neural_net_lab.table import DataValidationError, TableSchema, encode_features

logger = logging.getLogger(__name__)

SOURCE = "rows to price"


def validate_phones_to_price(raw: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Checks the id and feature columns like training data (every feature column, numbers
    where the table had numbers, no missing cell unless the schema fills them); returns the
    id and the features as given. Rows without an id column are numbered from 0."""
    if raw.empty:
        raise DataValidationError(f"{SOURCE}: the table has no rows")
    encode_features(raw, schema, SOURCE)
    id_column = schema.id
    if id_column not in raw.columns:
        logger.info("%s: no id column '%s': rows are numbered from 0", SOURCE, id_column)
        raw = raw.assign(**{id_column: range(len(raw))})
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
    extra = [c for c in raw.columns if c not in {*schema.features, id_column}]
    if extra:
        logger.warning("%s: ignoring extra column(s) %s", SOURCE, extra)
    return raw[[id_column, *schema.features]].reset_index(drop=True)


def price_phones(
    phones: pd.DataFrame,
    scaler: Mapping[str, Any],
    model_state: dict[str, torch.Tensor],
    model: ModelParams,
    schema: TableSchema,
) -> pd.DataFrame:
    """Each row's id, predicted class and one probability column per class, by the training
    pipeline's network with the persisted scaler."""
    network = scaled_network(scaler, model_state, schema.network(model), schema)
    return price_phones_with(phones, network, schema)


def price_phones_with(
    phones: pd.DataFrame, classifier: Ensemble, schema: TableSchema
) -> pd.DataFrame:
    """Each row's id, predicted class (the table's own labels) and the classifier's mean
    probability per class (one scaled network, or a fold ensemble: the served model's
    arithmetic)."""
    probabilities = classifier.probabilities(encode_features(phones, schema, SOURCE))
    predictions = pd.DataFrame(
        {
            schema.id: phones[schema.id].to_numpy(),
            schema.target: schema.labels(probabilities.argmax(axis=1)),
        }
    )
    for column, values in zip(schema.probability_columns(), probabilities.T, strict=True):
        predictions[column] = values
    logger.info(
        "Classified %d rows of %r with %d network(s); predicted classes %s",
        len(predictions),
        schema.name,
        len(classifier),
        predictions[schema.target].value_counts().sort_index().to_dict(),
    )
    return predictions
