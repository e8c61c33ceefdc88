"""Nodes of the data_processing pipeline: validate, split, standardize."""

from __future__ import annotations

import logging
from typing import Any

import pandas as pd
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler

logger = logging.getLogger(__name__)


class DataValidationError(ValueError):
    """The input table breaks a rule; the message names the columns and the rows."""


def check_feature_table(frame: pd.DataFrame, columns: dict[str, Any], source: str) -> pd.DataFrame:
    """Checks the feature columns (present, numeric, no missing values); returns them as floats.

    Shared with inference, which scores tables that have no label column.
    """
    features = columns["features"]
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
    raw: pd.DataFrame, columns: dict[str, Any], params: dict[str, Any]
) -> pd.DataFrame:
    """Validates the raw table; returns the 20 features as floats and the label as int.

    An ``id`` column and any other extra column are dropped. Each broken rule raises an
    error naming the column(s) and how many rows are bad, so nothing downstream is written.
    """
    source = "phone price table"
    target, classes = columns["target"], list(columns["classes"])
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
    too_few = counts[counts < params["min_rows_per_class"]]
    if not too_few.empty:
        raise DataValidationError(
            f"{source}: column '{target}': class(es) {too_few.to_dict()} have fewer than "
            f"{params['min_rows_per_class']} rows (data_processing.min_rows_per_class), "
            "too few to stratify"
        )
    extra = [c for c in raw.columns if c not in {*columns["features"], target, columns["id"]}]
    if extra:
        logger.warning("%s: ignoring extra column(s) %s", source, extra)
    validated = features.assign(**{target: labels.astype("int64")})
    logger.info("Validated %d phones, class counts %s", len(validated), counts.to_dict())
    return validated.reset_index(drop=True)


def split_data(
    validated: pd.DataFrame, columns: dict[str, Any], params: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split with the share and random state from parameters."""
    share = params["train_share"]
    if isinstance(share, bool) or not isinstance(share, float) or not 0 < share < 1:
        raise ValueError(f"data_processing.train_share must be a number in (0, 1), got {share!r}")
    train, test = train_test_split(
        validated,
        train_size=share,
        stratify=validated[columns["target"]],
        random_state=params["random_state"],
    )
    return train.reset_index(drop=True), test.reset_index(drop=True)


def fit_scaler(train: pd.DataFrame, columns: dict[str, Any]) -> StandardScaler:
    """Fits the scaler on the training split only, so no test statistics leak into training."""
    return StandardScaler().fit(train[columns["features"]])


def standardize(frame: pd.DataFrame, scaler: StandardScaler, columns: dict[str, Any]) -> pd.DataFrame:
    """Scales the features with the training split's mean and deviation; keeps the label."""
    scaled = pd.DataFrame(
        scaler.transform(frame[columns["features"]]).astype("float32"),
        columns=columns["features"],
        index=frame.index,
    )
    if columns["target"] in frame.columns:
        scaled[columns["target"]] = frame[columns["target"]].to_numpy()
    return scaled
