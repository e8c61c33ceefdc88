"""A small phone table from another market: the transfer pipeline's target task.

Same 20 features drawn the same way as the main table, but three price tiers instead of four
and a shifted relation: ram still matters most, battery counts for much more, and internal
memory, 4G and the primary camera, which the main market ignores, now raise the price.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from .phone_prices import TARGET_COLUMN, price_tiers, sample_phone_features

NEW_MARKET_WEIGHTS: dict[str, float] = {
    "ram": 0.8,
    "battery_power": 0.6,
    "int_memory": 0.4,
    "four_g": 0.3,
    "pc": 0.25,
    "mobile_wt": -0.2,
}


def generate_new_market(
    n_rows: int = 500,
    seed: int = 7,
    noise_std: float = 0.1,
    weights: Mapping[str, float] | None = None,
    n_classes: int = 3,
) -> pd.DataFrame:
    """Generates the new market's phone table; same arguments, same rows."""
    if isinstance(n_rows, bool) or not isinstance(n_rows, int) or n_rows < n_classes:
        raise ValueError(f"n_rows must be an integer >= {n_classes}, got {n_rows!r}")
    rng = np.random.default_rng(seed)
    table = sample_phone_features(n_rows, rng)
    table[TARGET_COLUMN] = price_tiers(
        table, weights or NEW_MARKET_WEIGHTS, noise_std, n_classes, rng
    )
    return table
