"""Nodes of the optimizers pipeline: variant checks, the comparison report, the exponentially
weighted average and the optimizer paths over two-variable functions."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib import pyplot as plt

from neural_net_lab.engine.config import ColumnsParams, ModelParams, OptimizerParams, TrainingParams
from neural_net_lab.engine.overrides import VariantParams
from neural_net_lab.phone_table import check_feature_table
from neural_net_lab.reporting import markdown_table, plot_histories, results_table
from neural_net_lab.variants import check_variant_blocks

from .params import (
    EwaParams,
    FormulaPairsParams,
    FunctionParams,
    OptimizersReportParams,
    TrajectoriesParams,
)
from .surfaces import (
    Surface,
    build_surface,
    lesson_adam_path,
    lesson_momentum_path,
    torch_path,
    uncorrected_adam_factor,
)

logger = logging.getLogger(__name__)

Paths = dict[str, dict[str, np.ndarray]]

# ---- variants ----------------------------------------------------------------------------


def check_variants(  # noqa: PLR0917 - Kedro passes a node's inputs by position
    fit_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    test_set: pd.DataFrame,
    variants: dict[str, VariantParams],
    model: ModelParams,
    training: TrainingParams,
    columns: ColumnsParams,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Checks every variant's settings and the input tables; passes the tables on unchanged.

    The trainings read the tables from this node, so a bad setting in any variant stops the
    run before the first epoch of any of them.
    """
    check_variant_blocks("optimizers", variants, model, training)
    for frame, name in (
        (fit_set, "fit_set"),
        (validation_set, "validation_set"),
        (test_set, "test_set"),
    ):
        check_feature_table(frame, columns, name)
        if columns.target not in frame.columns:
            raise ValueError(f"{name}: missing label column '{columns.target}'")
    logger.info("Optimizer variants checked: %s", ", ".join(map(str, variants)))
    return fit_set, validation_set, test_set


# ---- comparison report -------------------------------------------------------------------

_REPORTED = [
    "final_train_loss",
    "train_accuracy",
    "best_val_accuracy",
    "test_accuracy",
    "training_seconds",
]


def epochs_to_reach(values: Sequence[float], target: float) -> int | None:
    """First epoch (1-based) whose value is at least ``target``; None if none is."""
    return next((epoch for epoch, value in enumerate(values, start=1) if value >= target), None)


def _settings(optimizer: OptimizerParams | Mapping[str, Any]) -> str:
    if isinstance(optimizer, OptimizerParams):
        optimizer = optimizer.dump()
    settings = ", ".join(f"{k}={v}" for k, v in optimizer.items() if k != "name")
    return f"{optimizer['name']}({settings})"


def comparison_table(report: OptimizersReportParams, *results: dict[str, Any]) -> pd.DataFrame:
    """One row per optimizer: settings, final losses and accuracies, epochs to target, time."""
    target = report.target_val_accuracy
    table = results_table(results, _REPORTED)
    table.insert(1, "optimizer", [_settings(r["training"]["optimizer"]) for r in results])
    table.insert(
        table.columns.get_loc("test_accuracy") + 1,
        "epochs_to_target",
        pd.array(
            [epochs_to_reach(r["history"].get("val_accuracy", []), target) for r in results],
            dtype="Int64",
        ),
    )
    return table


def comparison_markdown(
    table: pd.DataFrame, report: OptimizersReportParams, training: TrainingParams
) -> str:
    """The comparison table as a Markdown report with how it was measured."""
    shown = table.astype({"epochs_to_target": "object"}).fillna({"epochs_to_target": "not reached"})
    # Final losses span orders of magnitude: four decimals would show Adam's as 0.0000, and
    # the table formatter would turn "2.8e-05" back into one.
    shown["final_train_loss"] = shown["final_train_loss"].map(_scientific)
    notes = [
        f"`epochs_to_target`: first epoch with validation accuracy ≥ {report.target_val_accuracy}. "
        f"All variants: seed {training.seed}, batch size {training.batch_size}, the same "
        "fit/validation/test split; the settings that differ are in `optimizer`.",
        "`best_val_accuracy` is the best epoch's validation accuracy; `train_accuracy` and "
        "`test_accuracy` are the final model's. The test split is reported, never used to choose.",
        "`training_seconds`: wall time of the training loop (with the per-epoch validation).",
        "Curves: `optimizers_loss_curves.png`; each variant is a child run of this run in MLflow.",
    ]
    return markdown_table(shown, "Optimizers on the phone-price MLP", notes)


def _scientific(value: float) -> str:
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def loss_curves_plot(report: OptimizersReportParams, *results: dict[str, Any]) -> plt.Figure:
    """Every optimizer's training and validation loss and validation accuracy per epoch."""
    figure = plot_histories(
        results, ["train_loss", "val_loss", "val_accuracy"], "Optimizers: phone-price MLP"
    )
    accuracy_axis = figure.axes[-1]
    accuracy_axis.axhline(report.target_val_accuracy, color="grey", linestyle=":", label="target")
    return figure


# ---- exponentially weighted average ------------------------------------------------------


def exponentially_weighted_average(
    values: Sequence[float], beta: float, bias_correction: bool
) -> list[float]:
    """v_t = β·v_{t−1} + (1−β)·θ_t from v_0 = 0; divided by 1−βᵗ when bias-corrected."""
    average, averages = 0.0, []
    for t, value in enumerate(values, start=1):
        average = beta * average + (1 - beta) * value
        averages.append(average / (1 - beta**t) if bias_correction else average)
    return averages


def draw_temperatures(ewa: EwaParams) -> pd.DataFrame:
    """The lesson's temperatures: ``randn(days) * scale`` after ``torch.manual_seed(seed)``."""
    # A generator of its own gives the same numbers without reseeding the global one.
    generator = torch.Generator().manual_seed(ewa.seed)
    temperatures = torch.randn(ewa.days, generator=generator) * ewa.scale
    return pd.DataFrame(
        {"day": np.arange(1, ewa.days + 1), "temperature": temperatures.double().numpy()}
    )


def ewa_column(beta: float, bias_correction: bool) -> str:
    """Column name of one average in the EWA table."""
    return f"ewa_beta_{beta}" + ("_corrected" if bias_correction else "")


def average_temperatures(temperatures: pd.DataFrame, ewa: EwaParams) -> pd.DataFrame:
    """Adds each β's average, without and with bias correction, to the temperature table."""
    table = temperatures.copy()
    for beta in ewa.betas:
        for corrected in (False, True):
            table[ewa_column(beta, corrected)] = exponentially_weighted_average(
                table["temperature"].tolist(), beta, corrected
            )
    return table


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


# ---- optimizer paths over two-variable functions -----------------------------------------


def _surface(trajectories: TrajectoriesParams, name: str) -> Surface:
    if name not in trajectories.root:
        raise ValueError(
            f"optimizers_trajectories.{name}: no such function; defined: {sorted(trajectories.root)}"
        )
    return build_surface(trajectories.root[name].function)


def optimizer_paths(trajectories: TrajectoriesParams) -> Paths:
    """Each function's path for each ``torch.optim`` optimizer, from one start, same steps."""
    return {
        name: {
            key: torch_path(_surface(trajectories, name), setup.start, optimizer, setup.steps)
            for key, optimizer in setup.optimizers.items()
        }
        for name, setup in trajectories.root.items()
    }


def _value(surface: Surface, point: np.ndarray) -> float:
    return float(surface(torch.tensor(point[0]), torch.tensor(point[1])))


def trajectory_summary(paths: Paths, trajectories: TrajectoriesParams) -> pd.DataFrame:
    """Where each optimizer ended on each function, and its value there."""
    rows = []
    for name, by_optimizer in paths.items():
        surface = _surface(trajectories, name)
        for key, path in by_optimizer.items():
            rows.append(
                {
                    "function": name,
                    "optimizer": key,
                    "settings": _settings(trajectories.root[name].optimizers[key]),
                    "steps": len(path) - 1,
                    "start_value": _value(surface, path[0]),
                    "final_x": path[-1][0],
                    "final_y": path[-1][1],
                    "final_value": _value(surface, path[-1]),
                }
            )
    return pd.DataFrame(rows)


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


def _minimum(function: FunctionParams) -> list[float]:
    a = 1.0 if function.a is None else function.a
    return [a, a * a] if function.kind == "rosenbrock" else [0.0, 0.0]


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
            _surface(trajectories, name),
            list(by_optimizer.values()),
            _minimum(setup.function),
        )
        _draw_paths(
            axis, {f"{k}: {_settings(setup.optimizers[k])}": p for k, p in by_optimizer.items()}
        )
        axis.set(title=f"{name.replace('_', ' ')}, {setup.steps} steps", xlabel="x", ylabel="y")
        axis.legend(fontsize=7, loc="best")
    figure.suptitle("torch.optim optimizers on two-variable functions")
    figure.tight_layout()
    return figure


# ---- the lesson's formulas next to PyTorch's ---------------------------------------------


def formula_pair_paths(pairs: FormulaPairsParams, trajectories: TrajectoriesParams) -> Paths:
    """The lesson's momentum and Adam next to ``torch.optim`` settings, same start and steps."""
    surface = _surface(trajectories, pairs.function)
    start, steps = trajectories.root[pairs.function].start, trajectories.root[pairs.function].steps
    lr, beta = pairs.momentum.lr, pairs.momentum.beta
    adam = pairs.adam
    betas = tuple(adam.betas)
    torch_adam = {"name": "Adam", "lr": adam.lr, "betas": betas, "eps": adam.eps}
    sgd = {"name": "SGD", "lr": lr, "momentum": beta, "dampening": 1 - beta}
    sgd_scaled = {"name": "SGD", "lr": lr * (1 - beta), "momentum": beta}
    return {
        "momentum": {
            f"lesson: v = βv + (1−β)∇L, lr={lr}, β={beta}": lesson_momentum_path(
                surface, start, lr, beta, steps
            ),
            f"SGD(lr={lr}, momentum={beta}, dampening={1 - beta:.2g})": torch_path(
                surface, start, sgd, steps
            ),
            f"SGD(lr={lr * (1 - beta):.3g}, momentum={beta})": torch_path(
                surface, start, sgd_scaled, steps
            ),
        },
        "adam": {
            f"lesson: no bias correction, lr={adam.lr}": lesson_adam_path(
                surface, start, adam.lr, betas, eps=adam.eps, steps=steps
            ),
            f"Adam(lr={adam.lr}) (bias-corrected)": torch_path(surface, start, torch_adam, steps),
            "Adam + LambdaLR (1−β₁ᵗ)/√(1−β₂ᵗ)": torch_path(
                surface, start, torch_adam, steps, schedule=uncorrected_adam_factor(betas)
            ),
        },
    }


def formula_pair_summary(paths: Paths) -> pd.DataFrame:
    """How far each PyTorch setting's path strays from the lesson's (the first series)."""
    rows = []
    for pair, series in paths.items():
        (lesson_label, lesson), *others = series.items()
        for label, path in others:
            gaps = np.linalg.norm(path - lesson, axis=1)
            rows.append(
                {
                    "pair": pair,
                    "lesson": lesson_label,
                    "pytorch": label,
                    "max_distance": gaps.max(),
                    "final_distance": gaps[-1],
                    "first_step_ratio": np.linalg.norm(path[1] - path[0])
                    / np.linalg.norm(lesson[1] - lesson[0]),
                }
            )
    return pd.DataFrame(rows)


def plot_formula_pairs(
    paths: Paths, pairs: FormulaPairsParams, trajectories: TrajectoriesParams
) -> plt.Figure:
    """One panel per pair: the lesson's path solid, PyTorch's settings over it."""
    surface = _surface(trajectories, pairs.function)
    minimum = _minimum(trajectories.root[pairs.function].function)
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
