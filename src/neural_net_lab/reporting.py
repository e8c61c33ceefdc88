"""Reports shared by the experiments that train one variant per child run.

A variant result is the dict that ``variants.train_variant`` returns: ``name``,
``model``, ``training``, ``history`` (per-epoch lists), ``metrics`` (final values),
``mlflow_run_id`` and ``state_dict``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt


def results_table(results: Sequence[dict[str, Any]], metrics: Sequence[str]) -> pd.DataFrame:
    """One row per variant (``variant`` column first) with the chosen final metrics."""
    rows = [
        {"variant": r["name"], **{m: r["metrics"].get(m, np.nan) for m in metrics}} for r in results
    ]
    return pd.DataFrame(rows, columns=["variant", *metrics])


def markdown_table(table: pd.DataFrame, title: str, notes: Sequence[str] = ()) -> str:
    """A Markdown report: a title, the table, and notes below it."""
    body = table.to_markdown(index=False, floatfmt=".4f")
    return "\n\n".join([f"# {title}", body, *notes]) + "\n"


def plot_histories(
    results: Sequence[dict[str, Any]],
    keys: Sequence[str],
    title: str,
    log_keys: Sequence[str] = ("train_loss", "val_loss"),
) -> plt.Figure:
    """One panel per history key with every variant's curve, for comparing variants at a glance."""
    figure, axes = plt.subplots(1, len(keys), figsize=(5.5 * len(keys), 4), squeeze=False)
    for axis, key in zip(axes[0], keys):
        for result in results:
            values = result["history"].get(key)
            if values:
                axis.plot(np.arange(1, len(values) + 1), values, label=result["name"])
        axis.set(
            title=key.replace("_", " "),
            xlabel="epoch",
            yscale="log" if key in log_keys else "linear",
        )
        axis.grid(alpha=0.3)
    axes[0][0].legend()
    figure.suptitle(title)
    figure.tight_layout()
    return figure
