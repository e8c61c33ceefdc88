"""Generated classification tables that are not the phone table: other labels (strings,
1…K, booleans), a text column, 2 to 10 classes, many features. Seeded, learnable (a linear
score plus the text column's effect decides the class), small enough for tests."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd


def make_table(  # noqa: PLR0913 - each knob is one of the cases the tests cover
    labels: Sequence[Any],
    *,
    n_rows: int = 300,
    n_features: int = 5,
    text: dict[str, Sequence[str]] | None = None,
    missing: dict[str, int] | None = None,
    id_column: str | None = None,
    target: str = "label",
    seed: int = 0,
) -> pd.DataFrame:
    """A table of ``n_features`` numeric columns ``x0…``, optional text columns (each a few
    categories that shift the score), and a label column ``target`` holding ``labels``:
    the label is the quantile bin of a noisy linear score, so every class has about
    ``n_rows / len(labels)`` rows. ``missing`` blanks that many cells of a column."""
    rng = np.random.default_rng(seed)
    frame = pd.DataFrame(
        rng.normal(size=(n_rows, n_features)), columns=[f"x{i}" for i in range(n_features)]
    )
    # Integer-valued columns too, like the phone table's counts.
    frame["x0"] = np.round(frame["x0"] * 10 + 50).astype("int64")
    score = frame.to_numpy() @ rng.normal(size=n_features) / np.sqrt(n_features)
    score = score + 0.1 * rng.normal(size=n_rows)
    for column, categories in (text or {}).items():
        drawn = rng.choice(len(categories), size=n_rows)
        frame[column] = np.asarray(categories, dtype=object)[drawn]
        score = score + 0.8 * (drawn - (len(categories) - 1) / 2)
    bins = np.quantile(score, np.linspace(0, 1, len(labels) + 1)[1:-1])
    frame[target] = np.asarray(labels, dtype=object)[np.digitize(score, bins)]
    if len({type(v) for v in labels}) == 1:
        frame[target] = frame[target].astype(type(labels[0]))
    for column, count in (missing or {}).items():
        frame.loc[rng.choice(n_rows, size=count, replace=False), column] = None
    if id_column:
        frame.insert(0, id_column, np.arange(1000, 1000 + n_rows))
    return frame


def write_csv(frame: pd.DataFrame, path: Path) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    frame.to_csv(path, index=False)
    return path
