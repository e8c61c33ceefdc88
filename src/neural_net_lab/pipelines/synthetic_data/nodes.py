"""Nodes of the synthetic_data pipeline."""

from __future__ import annotations

from typing import Annotated, ClassVar

import pandas as pd
from pydantic import Field, StrictInt

from neural_net_lab.data_generation import generate_phone_prices
from neural_net_lab.engine.config import Block, NonNegativeFloat, NonNegativeInt


class SyntheticDataParams(Block):
    """``synthetic_data``: the size, seed and difficulty of the generated table."""

    block_path: ClassVar[str] = "synthetic_data"

    n_rows: Annotated[StrictInt, Field(ge=4)]  # at least one phone per price tier
    seed: NonNegativeInt
    noise_std: NonNegativeFloat  # noise on the latent price score


def generate_phone_table(params: SyntheticDataParams) -> pd.DataFrame:
    """Draws a phone-price table with the real one's schema from the seeded generator."""
    return generate_phone_prices(n_rows=params.n_rows, seed=params.seed, noise_std=params.noise_std)
