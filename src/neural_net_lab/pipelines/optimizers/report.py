"""The optimizers pipeline's tables and Markdown: the variants' comparison (settings, final
losses and accuracies, epochs to the target accuracy), the EWA table's column names, where each
optimizer's path ended, and how far each PyTorch setting strays from the lesson's formula."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd

from neural_net_lab.engine.config import OptimizerParams, TrainingParams
from neural_net_lab.reporting import markdown_table, results_table

from .params import OptimizersReportParams, TrajectoriesParams
from .surfaces import Paths, surface_named, value_at

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


def optimizer_label(optimizer: OptimizerParams | Mapping[str, Any]) -> str:
    if isinstance(optimizer, OptimizerParams):
        optimizer = optimizer.dump()
    settings = ", ".join(f"{k}={v}" for k, v in optimizer.items() if k != "name")
    return f"{optimizer['name']}({settings})"


def comparison_table(report: OptimizersReportParams, *results: dict[str, Any]) -> pd.DataFrame:
    """One row per optimizer: settings, final losses and accuracies, epochs to target, time."""
    target = report.target_val_accuracy
    table = results_table(results, _REPORTED)
    table.insert(1, "optimizer", [optimizer_label(r["training"]["optimizer"]) for r in results])
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
    return markdown_table(shown, "Optimizers on the MLP", notes)


def _scientific(value: float) -> str:
    mantissa, exponent = f"{value:.2e}".split("e")
    return f"{mantissa} × 10{str(int(exponent)).translate(_SUPERSCRIPT)}"


_SUPERSCRIPT = str.maketrans("-0123456789", "⁻⁰¹²³⁴⁵⁶⁷⁸⁹")


def ewa_column(beta: float, bias_correction: bool) -> str:
    """Column name of one average in the EWA table."""
    return f"ewa_beta_{beta}" + ("_corrected" if bias_correction else "")


def trajectory_summary(paths: Paths, trajectories: TrajectoriesParams) -> pd.DataFrame:
    """Where each optimizer ended on each function, and its value there."""
    rows = []
    for name, by_optimizer in paths.items():
        surface = surface_named(trajectories, name)
        for key, path in by_optimizer.items():
            rows.append(
                {
                    "function": name,
                    "optimizer": key,
                    "settings": optimizer_label(trajectories.root[name].optimizers[key]),
                    "steps": len(path) - 1,
                    "start_value": value_at(surface, path[0]),
                    "final_x": path[-1][0],
                    "final_y": path[-1][1],
                    "final_value": value_at(surface, path[-1]),
                }
            )
    return pd.DataFrame(rows)


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
