"""The optimizers pipeline's figures: the variants' loss curves, the averaged temperatures,
and the optimizer paths drawn over each function's contour."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib import pyplot as plt

from neural_net_lab.reporting import plot_histories

from .params import EwaParams, FormulaPairsParams, OptimizersReportParams, TrajectoriesParams
from .report import ewa_column, optimizer_label
from .surfaces import Paths, Surface, minimum_of, surface_named


def loss_curves_plot(report: OptimizersReportParams, *results: dict[str, Any]) -> plt.Figure:
    """Every optimizer's training and validation loss and validation accuracy per epoch."""
    figure = plot_histories(
        results, ["train_loss", "val_loss", "val_accuracy"], "Optimizers: the MLP"
    )
    accuracy_axis = figure.axes[-1]
    accuracy_axis.axhline(report.target_val_accuracy, color="grey", linestyle=":", label="target")
    return figure


def plot_temperatures(table: pd.DataFrame, ewa: EwaParams) -> plt.Figure:
    """Temperatures as points, each average as a line (dashed: without bias correction)."""
    figure, axis = plt.subplots(figsize=(9, 4.5))
    axis.scatter(
        table["day"], table["temperature"], color="black", s=14, label="temperature", zorder=3
    )
    for index, beta in enumerate(ewa.betas):
        color = f"C{index}"
        axis.plot(
            table["day"],
            table[ewa_column(beta, False)],
            color=color,
            linestyle="--",
            label=f"β = {beta}, no bias correction",
        )
        axis.plot(
            table["day"],
            table[ewa_column(beta, True)],
            color=color,
            label=f"β = {beta}, bias-corrected",
        )
    axis.set(
        title="Exponentially weighted average of daily temperatures",
        xlabel="day",
        ylabel="temperature",
    )
    axis.grid(alpha=0.3)
    axis.legend(fontsize=8)
    figure.tight_layout()
    return figure


def _contour(
    axis: plt.Axes, surface: Surface, paths: Sequence[np.ndarray], minimum: Sequence[float]
) -> None:
    points = np.vstack([*paths, [minimum]])
    low, high = points.min(axis=0), points.max(axis=0)
    margin = 0.15 * np.maximum(high - low, 1e-3)
    x, y = np.meshgrid(
        np.linspace(low[0] - margin[0], high[0] + margin[0], 300),
        np.linspace(low[1] - margin[1], high[1] + margin[1], 300),
    )
    values = surface(torch.from_numpy(x), torch.from_numpy(y)).numpy()
    # Log-spaced levels show both the steep walls and the flat valley floor.
    levels = np.geomspace(max(values.min(), 1e-4), values.max(), 25)
    axis.contour(x, y, values, levels=levels, colors="0.55", linewidths=0.7, alpha=0.8)
    axis.plot(*minimum, marker="*", color="black", markersize=12, linestyle="none", label="minimum")


def _draw_paths(
    axis: plt.Axes, paths: Mapping[str, np.ndarray], styles: Mapping[str, dict] | None = None
) -> None:
    for index, (label, path) in enumerate(paths.items()):
        # Markers show the step lengths; on long paths they would only hide the lines.
        marker = "o" if len(path) <= 100 else None
        style = {
            "color": f"C{index}",
            "marker": marker,
            "markersize": 2.5,
            "linewidth": 1.2,
            **(styles or {}).get(label, {}),
        }
        axis.plot(path[:, 0], path[:, 1], label=label, **style)
        # Where each path ends, visible even where later paths are drawn over it.
        axis.plot(
            *path[-1], marker="X", markersize=9, color=style["color"], markeredgecolor="white"
        )
    first = next(iter(paths.values()))
    axis.plot(*first[0], marker="s", color="black", linestyle="none", label="start")


def plot_trajectories(paths: Paths, trajectories: TrajectoriesParams) -> plt.Figure:
    """One panel per function: its contour and every optimizer's path."""
    figure, axes = plt.subplots(1, len(paths), figsize=(7 * len(paths), 5.5), squeeze=False)
    for axis, (name, by_optimizer) in zip(axes[0], paths.items()):
        setup = trajectories.root[name]
        _contour(
            axis,
            surface_named(trajectories, name),
            list(by_optimizer.values()),
            minimum_of(setup.function),
        )
        _draw_paths(
            axis,
            {f"{k}: {optimizer_label(setup.optimizers[k])}": p for k, p in by_optimizer.items()},
        )
        axis.set(title=f"{name.replace('_', ' ')}, {setup.steps} steps", xlabel="x", ylabel="y")
        axis.legend(fontsize=7, loc="best")
    figure.suptitle("torch.optim optimizers on two-variable functions")
    figure.tight_layout()
    return figure


def plot_formula_pairs(
    paths: Paths, pairs: FormulaPairsParams, trajectories: TrajectoriesParams
) -> plt.Figure:
    """One panel per pair: the lesson's path solid, PyTorch's settings over it."""
    surface = surface_named(trajectories, pairs.function)
    minimum = minimum_of(trajectories.root[pairs.function].function)
    figure, axes = plt.subplots(1, len(paths), figsize=(7 * len(paths), 5.5), squeeze=False)
    for axis, (pair, series) in zip(axes[0], paths.items()):
        _contour(axis, surface, list(series.values()), minimum)
        labels = list(series)
        # The exact equivalent is drawn dashed on top of the lesson's path that it retraces.
        _draw_paths(
            axis,
            series,
            {
                labels[0]: {"linewidth": 3, "alpha": 0.5},
                labels[2]: {"linestyle": "--", "marker": "x"},
            },
        )
        axis.set(title=f"{pair}: lesson vs torch.optim", xlabel="x", ylabel="y")
        axis.legend(fontsize=7, loc="best")
    steps = trajectories.root[pairs.function].steps
    figure.suptitle(f"Same start, same {steps} steps on the {pairs.function.replace('_', ' ')}")
    figure.tight_layout()
    return figure
