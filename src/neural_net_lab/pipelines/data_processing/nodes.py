"""Nodes of the data_processing pipeline: the phone table's own checks, split and scaling,
which live in ``neural_net_lab.phone_table`` because other pipelines reuse them."""

from neural_net_lab.phone_table import fit_scaler, split_data, standardize, validate_phone_prices

__all__ = ["fit_scaler", "split_data", "standardize", "validate_phone_prices"]
