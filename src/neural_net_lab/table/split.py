"""The stratified splits: train/test (data_processing) and the validation carve (training)."""

from __future__ import annotations

import pandas as pd
from sklearn.model_selection import train_test_split

from .schema import DataProcessingParams, TableSchema


def split_data(
    validated: pd.DataFrame, schema: TableSchema, params: DataProcessingParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split with the share and random state from parameters."""
    return stratified_split(
        validated, schema.target, params.random_state, train_size=params.train_share
    )


def stratified_split(
    table: pd.DataFrame, target: str, seed: int, **size: float
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """``train_test_split`` of the table's rows stratified by the label column ``target``,
    each part indexed from 0."""
    first, second = train_test_split(table, stratify=table[target], random_state=seed, **size)
    return first.reset_index(drop=True), second.reset_index(drop=True)
