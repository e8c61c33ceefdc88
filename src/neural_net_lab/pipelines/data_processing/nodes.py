"""Nodes of the data_processing pipeline: the table's checks, schema, split and scaling, which
live in ``neural_net_lab.table`` because every pipeline that reads the table reuses them."""

from neural_net_lab.table import fit_scaler, split_data, standardize, validate_table

__all__ = ["fit_scaler", "split_data", "standardize", "validate_table"]
