"""From the table's columns to the network's inputs, and back to the user's labels.

A row's features become the network's inputs in three steps, learned on the training split
only and saved without pickles: missing cells filled (when imputation is on: scikit-learn's
``SimpleImputer`` statistics, median for numbers, most frequent for text), text columns
one-hot encoded (scikit-learn's ``OneHotEncoder``; a category not seen in training is all
zeros, counted and logged), then every input column standardized (``StandardScaler``: the
default network, each cross-validation fold and the baselines' pipelines scale the same
columns the same way). The served model repeats these steps with pandas
(``serving/phone_price_classifier.py``), because it may not import scikit-learn.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from sklearn.impute import SimpleImputer
from sklearn.preprocessing import OneHotEncoder, StandardScaler

from .schema import DataValidationError, TableSchema

logger = logging.getLogger(__name__)


def fit_imputation(train: pd.DataFrame, features: list[str], text: list[str]) -> dict[str, Any]:
    """The value that fills each feature column's missing cells, from the training rows."""
    fills: dict[str, Any] = {}
    numeric = [c for c in features if c not in text]
    if numeric:
        imputer = SimpleImputer(strategy="median", keep_empty_features=True)
        fills |= dict(zip(numeric, imputer.fit(train[numeric]).statistics_.tolist()))
    if text:
        words = train[text].astype(object).where(train[text].notna(), np.nan)
        imputer = SimpleImputer(strategy="most_frequent", keep_empty_features=True)
        fills |= dict(zip(text, (str(v) for v in imputer.fit(words).statistics_)))
    return {column: fills[column] for column in features}


def fit_categories(
    train: pd.DataFrame, text: list[str], imputation: Mapping[str, Any] | None
) -> dict[str, list[str]]:
    """Each text column's categories in the training rows (after filling), sorted."""
    if not text:
        return {}
    words = _filled(train[text], imputation)
    encoder = OneHotEncoder(handle_unknown="ignore").fit(words)
    return {column: [str(c) for c in cats] for column, cats in zip(text, encoder.categories_)}


def inputs_of(features: list[str], categories: Mapping[str, list[str]], source: str) -> list[str]:
    """The network's input columns: each numeric feature, and ``<column>_<category>`` for
    each category of a text column (scikit-learn's names), in the features' order."""
    inputs = [
        name
        for column in features
        for name in (
            [f"{column}_{c}" for c in categories[column]] if column in categories else [column]
        )
    ]
    clashes = sorted({name for name in inputs if inputs.count(name) > 1})
    if clashes:
        raise DataValidationError(
            f"{source}: the one-hot inputs {clashes} clash with other input columns; rename "
            "the column or leave one out of columns.features"
        )
    return inputs


def encode_features(frame: pd.DataFrame, schema: TableSchema, source: str) -> np.ndarray:
    """The rows' network inputs before scaling (float64, ``schema.inputs`` in order).

    Checks what the rows must hold: every feature column, numbers in numeric columns, no
    missing cell unless the schema fills them. Unseen categories are counted and logged."""
    missing = [c for c in schema.features if c not in frame.columns]
    if missing:
        raise DataValidationError(f"{source}: missing feature column(s) {missing}")
    table = _filled(frame[schema.features], schema.imputation)
    problems, parts = [], []
    for column in schema.features:
        values = table[column]
        gaps = values.isna()
        if gaps.any():
            problems.append(
                f"column '{column}': {int(gaps.sum())} row(s) with missing values "
                f"(rows {rows_where(gaps)})"
            )
        if column in schema.categories:
            parts.append(_one_hot(values, column, schema.categories[column], source))
            continue
        numbers = pd.to_numeric(values, errors="coerce")
        bad = numbers.isna() & values.notna()
        if bad.any():
            examples = values[bad].astype(str).unique()[:3].tolist()
            problems.append(
                f"column '{column}': {int(bad.sum())} row(s) not numeric (e.g. {examples})"
            )
        parts.append(numbers.to_numpy(dtype="float64")[:, None])
    if problems:
        raise DataValidationError(f"{source}: " + "; ".join(problems))
    # Column-major, as pandas hands a numeric frame to NumPy: reductions over rows (the
    # scaler's mean) then add in the same order, bit for bit.
    return np.asfortranarray(np.hstack(parts)) if parts else np.empty((len(frame), 0))


def _one_hot(values: pd.Series, column: str, categories: list[str], source: str) -> np.ndarray:
    words = values.astype(object).where(values.isna(), values.astype(str)).to_frame(column)
    encoder = OneHotEncoder(
        categories=[np.asarray(categories, dtype=object)],
        handle_unknown="ignore",
        sparse_output=False,
    ).fit(pd.DataFrame({column: categories[:1]}, dtype=object))
    unseen = words[column].notna() & ~words[column].isin(categories)
    if unseen.any():
        logger.warning(
            "%s: column '%s': %d row(s) with categories not seen in training %s, encoded as "
            "none of its categories",
            source,
            column,
            int(unseen.sum()),
            sorted(words.loc[unseen, column].unique().tolist())[:5],
        )
    return encoder.transform(words.fillna(categories[0]))


def encode_labels(frame: pd.DataFrame, schema: TableSchema, source: str) -> np.ndarray:
    """The class codes 0…K−1 of the rows' labels."""
    return schema.codes(frame[schema.target], source)


def fit_scaler(train: pd.DataFrame, schema: TableSchema) -> dict[str, Any]:
    """Fits a StandardScaler on the training split's inputs only; returns its parameters.

    Fitting on the training split keeps the test rows' statistics out of training. The
    parameters are persisted as JSON rather than a pickled scaler: readable, tied to no
    scikit-learn version, and loading them runs no code.
    """
    scaler = StandardScaler().fit(encode_features(train, schema, "training split"))
    return {
        "features": list(schema.inputs),
        "mean": scaler.mean_.tolist(),
        "scale": scaler.scale_.tolist(),
        "n_samples_seen": int(scaler.n_samples_seen_),
    }


def scaler_arrays(scaler: Mapping[str, Any], inputs: list[str]) -> tuple[np.ndarray, np.ndarray]:
    """The persisted scaler's mean and scale as float64 arrays, checked against ``inputs``."""
    source = "scaler (the 'scaler' dataset written by data_processing)"
    absent = [key for key in ("features", "mean", "scale") if key not in scaler]
    if absent:
        raise ValueError(f"{source}: missing key(s) {absent}")
    fitted, inputs = list(scaler["features"]), list(inputs)
    if fitted != inputs:
        not_fitted = [c for c in inputs if c not in fitted]
        not_configured = [c for c in fitted if c not in inputs]
        detail = (
            f"inputs of the table schema not in the scaler: {not_fitted}; "
            f"scaler inputs not in the table schema: {not_configured}"
            if not_fitted or not_configured
            else f"same inputs in another order: scaler {fitted}, table schema {inputs}"
        )
        raise ValueError(
            f"{source}: fitted on other inputs than the table schema's ({detail}); "
            "rerun `kedro run --pipelines data_processing`"
        )
    mean = np.asarray(scaler["mean"], dtype="float64")
    scale = np.asarray(scaler["scale"], dtype="float64")
    for key, values in (("mean", mean), ("scale", scale)):
        if values.shape != (len(inputs),):
            raise ValueError(
                f"{source}: '{key}' holds {values.size} value(s) for {len(inputs)} inputs"
            )
    bad = [
        c
        for c, m, s in zip(inputs, mean, scale, strict=True)
        if not (np.isfinite(m) and np.isfinite(s) and s > 0)
    ]
    if bad:
        raise ValueError(f"{source}: non-finite mean or non-positive scale for {bad}")
    return mean, scale


def standardize(
    frame: pd.DataFrame, scaler: Mapping[str, Any], schema: TableSchema
) -> pd.DataFrame:
    """The model input: the rows' inputs scaled by the persisted training mean and scale
    (float32), and their class codes when the rows are labelled."""
    mean, scale = scaler_arrays(scaler, schema.inputs)
    # StandardScaler.transform's arithmetic (float64, minus mean, divided by scale), so the
    # float32 model inputs are bitwise those of the fitted scaler.
    scaled = (encode_features(frame, schema, "table to standardize") - mean) / scale
    scaled = pd.DataFrame(scaled.astype("float32"), columns=schema.inputs, index=frame.index)
    if schema.target in frame.columns:
        scaled[schema.target] = encode_labels(frame, schema, "table to standardize")
    return scaled


def _filled(frame: pd.DataFrame, imputation: Mapping[str, Any] | None) -> pd.DataFrame:
    if not imputation:
        return frame
    return frame.fillna({c: v for c, v in imputation.items() if c in frame.columns})


def rows_where(mask: pd.Series, shown: int = 5) -> str:
    """The first row positions (0-based, as pandas numbers them) where ``mask`` holds."""
    rows = [int(i) for i in mask.to_numpy().nonzero()[0]]
    return ", ".join(map(str, rows[:shown])) + (", …" if len(rows) > shown else "")
