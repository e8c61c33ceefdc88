"""The user's table: its checks, its derived schema, its splits and its encoding.

Shared by every pipeline that reads the table (data_processing derives the schema; training,
evaluation, tuning, inference, the experiments and the served model read it). It imports the
engine's parameter blocks, no pipeline.

- ``schema``: ``TableSchema`` (features, classes, categories, widths) and ``DataProcessingParams``
- ``validate``: the first node, ``validate_table``: every contradiction found before any work
- ``split``: the stratified train/test split and validation carve
- ``encoding``: imputation, one-hot, scaling, label codes (learned on the training split)
"""

from .encoding import encode_features, encode_labels, fit_scaler, scaler_arrays, standardize
from .schema import DataProcessingParams, DataValidationError, TableSchema, network_for_table
from .split import split_data, stratified_split
from .validate import derive_schema, find_id_column, validate_table

__all__ = [
    "DataProcessingParams",
    "DataValidationError",
    "TableSchema",
    "derive_schema",
    "encode_features",
    "encode_labels",
    "find_id_column",
    "network_for_table",
    "fit_scaler",
    "scaler_arrays",
    "split_data",
    "standardize",
    "stratified_split",
    "validate_table",
]
