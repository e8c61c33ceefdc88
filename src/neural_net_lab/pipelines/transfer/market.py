"""The new market's rows as the strategies see them: its columns and classes, its checked
table and stratified split, and the nested training subsets of the learning curve. Pure
functions of the table and the ``transfer`` block; nothing here trains."""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.model_selection import train_test_split

from neural_net_lab.engine.config import ColumnsParams
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.phone_table import split_data, validate_phone_prices

from .params import TransferParams


def target_columns(columns: ColumnsParams, transfer: TransferParams) -> ColumnsParams:
    """The shared column description with the new market's classes."""
    return columns.model_copy(update={"classes": transfer.target.classes})


def validate_new_market(
    raw: pd.DataFrame, columns: ColumnsParams, transfer: TransferParams
) -> pd.DataFrame:
    """Validates the new market's table with the main table's rules and its own classes."""
    return validate_phone_prices(raw, target_columns(columns, transfer), transfer.target)


def split_new_market(
    validated: pd.DataFrame, columns: ColumnsParams, transfer: TransferParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split of the new market with its own share and random state."""
    return split_data(validated, columns, transfer.target)


def draw_learning_curve(
    train_set: pd.DataFrame, columns: ColumnsParams, transfer: TransferParams
) -> list[dict[str, Any]]:
    """Nested stratified subsets of the training rows: one per curve size and repeat.

    Each repeat shrinks the full training split step by step, so the 25 rows are part of the
    50, which are part of the 100: a point differs from the next only by the added rows.
    The full split is always the last point.
    """
    curve = transfer.learning_curve
    n_rows, labels = len(train_set), train_set[columns.target].to_numpy()
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
