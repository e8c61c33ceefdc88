"""A synthetic stand-in for the public "Mobile Price Classification" table.

The real table cannot be downloaded on the project's machines, so this generator follows the
measured facts about it (schema, ranges, consistency rules, and how price depends on the
features): ``price_range`` is driven by ram, then battery power, pixel height and width, plus
noise, and the four classes are balanced.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

FEATURE_COLUMNS: list[str] = [
    "battery_power",
    "blue",
    "clock_speed",
    "dual_sim",
    "fc",
    "four_g",
    "int_memory",
    "m_dep",
    "mobile_wt",
    "n_cores",
    "pc",
    "px_height",
    "px_width",
    "ram",
    "sc_h",
    "sc_w",
    "talk_time",
    "three_g",
    "touch_screen",
    "wifi",
]
TARGET_COLUMN = "price_range"

# Weights of the standardized features in the latent price score: the least-squares fit of
# price_range on the real table (1.03·ram + 0.22·battery + 0.12·px_height + 0.12·px_width
# − 0.03·mobile_wt).
DEFAULT_PRICE_WEIGHTS: dict[str, float] = {
    "ram": 1.03,
    "battery_power": 0.22,
    "px_height": 0.12,
    "px_width": 0.12,
    "mobile_wt": -0.03,
}


def sample_phone_features(n_rows: int, rng: np.random.Generator) -> pd.DataFrame:
    """Draws ``n_rows`` phones' 20 features with the real table's ranges and rules."""
    n = n_rows
    three_g = rng.random(n) < 0.76
    # four_g implies three_g; 0.52 of all phones have 4G.
    four_g = three_g & (rng.random(n) < 0.52 / 0.76)
    pc = rng.integers(0, 21, n)
    # Front camera: right-skewed (mean ~4.3), never better than the primary camera.
    fc = np.minimum(np.minimum(rng.geometric(0.16, n) - 1, 19), pc)
    px_width = rng.integers(500, 1999, n)
    # Pixel height: right-skewed (quartiles ~283 / 564 / 947), never above the width.
    px_height = np.minimum(np.round(px_width * rng.beta(1.35, 1.5, n)), 1960).astype(int)
    sc_h = rng.integers(5, 20, n)
    # Screen width: right-skewed (quartiles ~2 / 5 / 9), never above the height.
    sc_w = np.minimum(np.floor(sc_h * rng.beta(1.1, 1.25, n)), 18).astype(int)
    columns = {
        "battery_power": rng.integers(501, 1999, n),
        "blue": (rng.random(n) < 0.5).astype(int),
        "clock_speed": np.round(rng.uniform(0.5, 3.0, n), 1),
        "dual_sim": (rng.random(n) < 0.51).astype(int),
        "fc": fc,
        "four_g": four_g.astype(int),
        "int_memory": rng.integers(2, 65, n),
        "m_dep": np.round(rng.uniform(0.1, 1.0, n), 1),
        "mobile_wt": rng.integers(80, 201, n),
        "n_cores": rng.integers(1, 9, n),
        "pc": pc,
        "px_height": px_height,
        "px_width": px_width,
        "ram": rng.integers(256, 3999, n),
        "sc_h": sc_h,
        "sc_w": sc_w,
        "talk_time": rng.integers(2, 21, n),
        "three_g": three_g.astype(int),
        "touch_screen": (rng.random(n) < 0.5).astype(int),
        "wifi": (rng.random(n) < 0.51).astype(int),
    }
    return pd.DataFrame({name: columns[name] for name in FEATURE_COLUMNS})


def price_tiers(
    features: pd.DataFrame,
    weights: Mapping[str, float],
    noise_std: float,
    n_classes: int,
    rng: np.random.Generator,
) -> np.ndarray:
    """Cuts a noisy linear score of the standardized features into equal-sized price tiers."""
    unknown = sorted(set(weights) - set(features.columns))
    if unknown:
        raise ValueError(f"price weights name unknown feature columns: {unknown}")
    score = np.zeros(len(features))
    for column, weight in weights.items():
        values = features[column].to_numpy(dtype=float)
        score += weight * (values - values.mean()) / values.std()
    score += rng.normal(0.0, noise_std, len(features))
    # Rank-based cut: exactly balanced classes whatever the score's distribution.
    ranks = np.argsort(np.argsort(score, kind="stable"), kind="stable")
    return (ranks * n_classes // len(features)).astype(int)


def generate_phone_prices(
    n_rows: int = 2000,
    seed: int = 2024,
    noise_std: float = 0.05,
    weights: Mapping[str, float] | None = None,
    n_classes: int = 4,
) -> pd.DataFrame:
    """Generates a phone table with the real one's schema; same arguments, same rows."""
    if not isinstance(n_rows, int) or n_rows < n_classes:
        raise ValueError(f"n_rows must be an integer >= {n_classes}, got {n_rows!r}")
    rng = np.random.default_rng(seed)
    table = sample_phone_features(n_rows, rng)
    table[TARGET_COLUMN] = price_tiers(
        table, weights or DEFAULT_PRICE_WEIGHTS, noise_std, n_classes, rng
    )
    return table
