"""The new market's rows as the strategies see them: its schema (the source table's columns
and encoding, its own classes), its checked table and stratified split, and the nested
training subsets of the learning curve. Pure functions of the tables and the ``transfer``
block; nothing here trains."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from neural_net_lab.engine.config import ColumnsParams
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.table import DataValidationError, TableSchema, derive_schema, split_data

from .params import TransferParams

MARKET = "new market (phone_prices_new_market)"


def validate_new_market(
    raw: pd.DataFrame, source: TableSchema, transfer: TransferParams
) -> tuple[pd.DataFrame, TableSchema]:
    """Validates the new market's table with the source table's rules and columns and its own
    classes; returns it and its schema: the source's features and encoding (the pretrained
    layers expect the source's inputs), the new market's classes.

    Transfer is the phone lesson: the new market is generated phones. A network trained on
    another table is refused here, before anything trains."""
    lacking = [c for c in source.features if c not in raw.columns]
    if lacking:
        raise DataValidationError(
            f"{MARKET}: transfer adapts the network trained on {source.name!r} to a new "
            f"market of phones, which lacks {len(lacking)} of its feature column(s) "
            f"{lacking[:5]}: the transfer lesson runs on the shipped phone table only "
            "(catalog entry phone_prices at data/01_raw/phone_prices.csv; run `kedro run` "
            "with it first)"
        )
    columns = ColumnsParams(
        target=source.target, features=source.features, classes=transfer.target.classes
    )
    validated, own = derive_schema(
        raw, columns, transfer.target.model_copy(update={"table_name": MARKET})
    )
    return validated, source.model_copy(update={"name": MARKET, "classes": own.classes})


def split_new_market(
    validated: pd.DataFrame, schema: TableSchema, transfer: TransferParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split of the new market with its own share and random state."""
    return split_data(validated, schema, transfer.target)


def draw_learning_curve(
    train_set: pd.DataFrame, schema: TableSchema, transfer: TransferParams
) -> list[dict[str, Any]]:
    """Nested stratified subsets of the training rows: one per curve size and repeat.

    Each repeat shrinks the full training split step by step, so the 25 rows are part of the
    50, which are part of the 100: a point differs from the next only by the added rows.
    The full split is always the last point.
    """
    curve = transfer.learning_curve
    n_rows, labels = len(train_set), train_set[schema.target].to_numpy()
    n_classes = len(np.unique(labels))
    if not all(n_classes <= size <= n_rows for size in curve.sizes):
        raise ParameterError(
            f"transfer.learning_curve.sizes must be row counts between {n_classes} "
            f"(one row per class) and {n_rows} (the new market's training rows), "
            f"got {curve.sizes}"
        )
    points = []
    for repeat in range(curve.repeats):
        index = np.arange(n_rows)
        points.append({"repeat": repeat, "rows": n_rows, "index": index.tolist()})
        for size in sorted(set(curve.sizes) - {n_rows}, reverse=True):
            index, _ = train_test_split(
                index, train_size=size, stratify=labels[index], random_state=curve.seed + repeat
            )
            points.append({"repeat": repeat, "rows": size, "index": sorted(index.tolist())})
    return sorted(points, key=lambda p: (p["rows"], p["repeat"]))
