"""Nodes of the synthetic_data pipeline."""

from __future__ import annotations

from typing import Any

import pandas as pd

from neural_net_lab.data_generation import generate_phone_prices


def generate_phone_table(params: dict[str, Any]) -> pd.DataFrame:
    """Draws a phone-price table with the real one's schema from the seeded generator."""
    return generate_phone_prices(
        n_rows=params["n_rows"], seed=params["seed"], noise_std=params["noise_std"]
    )
