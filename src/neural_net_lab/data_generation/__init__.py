"""Seeded generators of the phone-price tables shipped in ``data/01_raw``.

They import numpy and pandas only: the synthetic_data pipeline and the tests call them."""

from .new_market import generate_new_market
from .phone_prices import (
    FEATURE_COLUMNS,
    TARGET_COLUMN,
    generate_phone_prices,
    sample_phone_features,
)

__all__ = ["FEATURE_COLUMNS", "TARGET_COLUMN", "generate_phone_prices", "sample_phone_features"]
__all__ += ["generate_new_market"]
