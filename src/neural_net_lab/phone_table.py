"""The phone table: its parameters, checks, train/test split and scaling.

What every pipeline that reads phones shares: the data_processing pipeline's nodes, training's
validation carve, the transfer and backprop checks, inference and the served model's scaler.
Nothing here knows about training, tracking or a particular pipeline.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

from neural_net_lab.engine.config import Block, ColumnsParams, NonNegativeInt, PositiveInt

logger = logging.getLogger(__name__)


class DataProcessingParams(Block):
    """The split of the phone table (``data_processing``)."""

    block_path: ClassVar[str] = "data_processing"

    train_share: Annotated[float, Field(gt=0, lt=1)]
    random_state: NonNegativeInt
    # Stratifying needs rows of every class on both sides of each split.
    min_rows_per_class: PositiveInt


class DataValidationError(ValueError):
    """The input table breaks a rule; the message names the columns and the rows."""


def check_feature_table(frame: pd.DataFrame, columns: ColumnsParams, source: str) -> pd.DataFrame:
    """Checks the feature columns (present, numeric, no missing values); returns them as floats.

    Shared with inference, which scores tables that have no label column.
    """
    features = columns.features
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{source}: missing feature column(s) {missing}")
    problems = []
    numeric = {}
    for column in features:
        values = pd.to_numeric(frame[column], errors="coerce")
        not_numeric = values.isna() & frame[column].notna()
        if not_numeric.any():
            examples = frame.loc[not_numeric, column].astype(str).unique()[:3].tolist()
            problems.append(
                f"column '{column}': {int(not_numeric.sum())} row(s) not numeric (e.g. {examples})"
            )
        n_missing = int(frame[column].isna().sum())
        if n_missing:
            problems.append(f"column '{column}': {n_missing} row(s) with missing values")
        numeric[column] = values.astype("float64")
    if problems:
        raise DataValidationError(f"{source}: " + "; ".join(problems))
    return pd.DataFrame(numeric, index=frame.index)


def validate_phone_prices(
    raw: pd.DataFrame, columns: ColumnsParams, params: DataProcessingParams
) -> pd.DataFrame:
    """Validates the raw table; returns the 20 features as floats and the label as int.

    An ``id`` column and any other extra column are dropped. Each broken rule raises an
    error naming the column(s) and how many rows are bad, so nothing downstream is written.
    """
    source = "phone price table"
    target, classes = columns.target, columns.classes
    if target not in raw.columns:
        raise DataValidationError(f"{source}: missing label column '{target}'")
    features = check_feature_table(raw, columns, source)

    labels = pd.to_numeric(raw[target], errors="coerce")
    bad_labels = ~labels.isin(classes)
    if bad_labels.any():
        examples = raw.loc[bad_labels, target].astype(str).unique()[:5].tolist()
        raise DataValidationError(
            f"{source}: column '{target}': {int(bad_labels.sum())} row(s) with labels outside "
            f"the declared classes {classes} (e.g. {examples})"
        )
    counts = labels.value_counts().reindex(classes, fill_value=0)
    too_few = counts[counts < params.min_rows_per_class]
    if not too_few.empty:
        raise DataValidationError(
            f"{source}: column '{target}': class(es) {too_few.to_dict()} have fewer than "
            f"{params.min_rows_per_class} rows (data_processing.min_rows_per_class), "
            "too few to stratify"
        )
    extra = [c for c in raw.columns if c not in {*columns.features, target, columns.id}]
    if extra:
        logger.warning("%s: ignoring extra column(s) %s", source, extra)
    validated = features.assign(**{target: labels.astype("int64")})
    logger.info("Validated %d phones, class counts %s", len(validated), counts.to_dict())
    return validated.reset_index(drop=True)


def split_data(
    validated: pd.DataFrame, columns: ColumnsParams, params: DataProcessingParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split with the share and random state from parameters."""
    return stratified_split(validated, columns, params.random_state, train_size=params.train_share)


def stratified_split(
    table: pd.DataFrame, columns: ColumnsParams, seed: int, **size: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``train_test_split`` of the table's rows stratified by class, each part indexed from 0."""
    first, second = train_test_split(
        table, stratify=table[columns.target], random_state=seed, **size
    )
    return first.reset_index(drop=True), second.reset_index(drop=True)


def fit_scaler(train: pd.DataFrame, columns: ColumnsParams) -> dict[str, Any]:
    """Fits a StandardScaler on the training split only; returns its parameters to persist.

    Fitting on the training split keeps the test rows' statistics out of training. The
    parameters are persisted as JSON rather than a pickled scaler: readable, tied to no
    scikit-learn version, and loading them runs no code.
    """
    features = list(columns.features)
    scaler = StandardScaler().fit(train[features])
    return {
        "features": features,
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "n_samples_seen": int(scaler.n_samples_seen_),
    }


def scaler_arrays(scaler: Mapping[str, Any], features: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The persisted scaler's mean and scale as float64 arrays, checked against ``features``."""
    source = "scaler (the 'scaler' dataset written by data_processing)"
    absent = [key for key in ("features", "mean", "scale") if key not in scaler]
    if absent:
        raise ValueError(f"{source}: missing key(s) {absent}")
    fitted, features = list(scaler["features"]), list(features)
    if fitted != features:
        not_fitted = [c for c in features if c not in fitted]
        not_configured = [c for c in fitted if c not in features]
        detail = (
            f"columns.features not in the scaler: {not_fitted}; "
            f"scaler features not in columns.features: {not_configured}"
            if not_fitted or not_configured
            else f"same features in another order: scaler {fitted}, columns.features {features}"
        )
        raise ValueError(
            f"{source}: fitted on other features than columns.features ({detail}); "
            "rerun `kedro run --pipelines data_processing`"
        )
    mean = np.asarray(scaler["mean"], dtype="float64")
    scale = np.asarray(scaler["scale"], dtype="float64")
    for key, values in (("mean", mean), ("scale", scale)):
        if values.shape != (len(features),):
            raise ValueError(
                f"{source}: '{key}' holds {values.size} value(s) for {len(features)} features"
            )
    bad = [
        c
        for c, m, s in zip(features, mean, scale, strict=True)
        if not (np.isfinite(m) and np.isfinite(s) and s > 0)
    ]
    if bad:
        raise ValueError(f"{source}: non-finite mean or non-positive scale for {bad}")
    return mean, scale


def standardize(
    frame: pd.DataFrame, scaler: Mapping[str, Any], columns: ColumnsParams
) -> pd.DataFrame:
    """Scales the features with the persisted training mean and scale; keeps the label."""
    features = list(columns.features)
    mean, scale = scaler_arrays(scaler, features)
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise DataValidationError(f"table to standardize: missing feature column(s) {missing}")
    # StandardScaler.transform's arithmetic (float64, minus mean, divided by scale), so the
    # float32 model inputs are bitwise those of the fitted scaler.
    scaled = (frame[features].to_numpy(dtype="float64") - mean) / scale
    scaled = pd.DataFrame(scaled.astype("float32"), columns=features, index=frame.index)
    if columns.target in frame.columns:
        scaled[columns.target] = frame[columns.target].to_numpy()
    return scaled
