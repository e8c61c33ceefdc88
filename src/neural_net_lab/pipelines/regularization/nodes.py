"""Nodes of the regularization experiment: variant checks, the dropout demonstration, the report.

The variants themselves are trained by ``variants.variant_pipeline``; a result is the dict
that ``variants.train_variant`` returns.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from matplotlib.figure import Figure
from torch import nn

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.engine.tracking import flatten_params
from neural_net_lab.reporting import markdown_table, plot_histories, results_table
from neural_net_lab.variants import check_variant_blocks, typed_variants

from .params import DropoutDemoParams, RegularizationReportParams

EXPERIMENT = "regularization"


def plan_variants(
    model: ModelParams, training: TrainingParams, variants: Mapping[str, Any]
) -> dict[str, dict[str, Any]]:
    """Checks every variant block before any training; returns each variant's overrides, flattened."""
    variants = typed_variants(EXPERIMENT, variants)
    checked = check_variant_blocks(EXPERIMENT, variants, model, training)
    return {
        name: flatten_params(
            {part: variant.dump().get(part) or {} for part in ("model", "training")}
        )
        for name, variant in zip(checked, variants.values(), strict=True)
    }


def dropout_demonstration(demo: DropoutDemoParams) -> dict[str, Any]:
    """The lesson's demo: a seeded integer matrix through nn.Dropout in train and eval mode."""
    p = demo.p
    generator = torch.Generator().manual_seed(demo.seed)
    values = torch.randint(demo.low, demo.high, tuple(demo.shape), generator=generator).float()
    dropout = nn.Dropout(p)
    # nn.Dropout draws from the global generator: seed a private copy of it, leave others' intact.
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(demo.seed)
        train_mode = dropout.train()(values)
    eval_mode = dropout.eval()(values)
    kept = train_mode != 0
    scale = 1.0 / (1.0 - p)
    return {
        "p": p,
        "scale": scale,
        "input": values.tolist(),
        "train_mode": train_mode.tolist(),
        "eval_mode": eval_mode.tolist(),
        "dropped_share": 1.0 - kept.float().mean().item(),
        "survivors_scaled_by_1_over_1_minus_p": bool(
            torch.allclose(train_mode[kept], values[kept] * scale)
        ),
        "eval_mode_is_identity": bool(torch.equal(eval_mode, values)),
    }


def weight_matrices(state_dict: Mapping[str, torch.Tensor]) -> list[torch.Tensor]:
    """The weight matrices of a state dict (the tensors L1 penalises): no biases, no buffers."""
    return [t for k, t in state_dict.items() if k.endswith("weight") and t.dim() > 1]


def near_zero_share(weights: list[torch.Tensor], threshold: float) -> float:
    """Share of weight entries with |w| < threshold."""
    flat = torch.cat([w.detach().reshape(-1) for w in weights])
    return (flat.abs() < threshold).float().mean().item()


def l1_norm(weights: list[torch.Tensor]) -> float:
    """Σ|W| over the weight matrices; the L1 term of the loss is λ times this."""
    return float(sum(w.detach().abs().sum().item() for w in weights))


def compare_variants(
    plan: dict[str, dict[str, Any]], report: RegularizationReportParams, *results: dict[str, Any]
) -> tuple[pd.DataFrame, dict[str, dict[str, float]]]:
    """One row per variant (accuracies, gap, near-zero weights, time), the pick marked; MLflow metrics."""
    if not results:
        raise ValueError(
            "regularization: no variants to compare; add blocks under 'regularization' in the parameters"
        )
    threshold = report.near_zero_threshold
    table = results_table(results, ["train_accuracy", "val_accuracy", "test_accuracy"])
    table["generalization_gap"] = table["train_accuracy"] - table["test_accuracy"]
    weights = [weight_matrices(r["state_dict"]) for r in results]
    table["near_zero_weight_share"] = [near_zero_share(w, threshold) for w in weights]
    table["weight_l1_norm"] = [l1_norm(w) for w in weights]
    table["final_val_loss"] = [(r["history"].get("val_loss") or [math.nan])[-1] for r in results]
    table["training_seconds"] = [r["metrics"]["training_seconds"] for r in results]
    table["overrides"] = [
        ", ".join(f"{k}={v}" for k, v in plan.get(r["name"], {}).items()) or "(defaults)"
        for r in results
    ]
    table["selected"] = select_by_validation(table)
    metrics = {
        f"{row.variant}.{key}": {"value": float(getattr(row, key)), "step": 0}
        for row in table.itertuples()
        for key in ("generalization_gap", "near_zero_weight_share", "weight_l1_norm")
    }
    return table, metrics


def select_by_validation(table: pd.DataFrame) -> list[bool]:
    """Marks the variant with the best final validation accuracy (ties: lower validation loss).

    The test columns are never read: choosing on them would make the test accuracy an
    optimistic estimate. Without a validation share nothing is selected.
    """
    candidates = table.dropna(subset=["val_accuracy"])
    if candidates.empty:
        return [False] * len(table)
    best = candidates.sort_values(
        ["val_accuracy", "final_val_loss"], ascending=[False, True], kind="stable"
    ).index[0]
    return [index == best for index in table.index]


def report_markdown(
    table: pd.DataFrame, dropout_demo: dict[str, Any], report: RegularizationReportParams
) -> str:
    """The comparison as Markdown, naming the variant chosen on validation accuracy, and the dropout demo."""
    chosen = table[table["selected"]]
    if chosen.empty:
        verdict = "No variant is selected: training.validation_share is 0, and the test split chooses nothing."
    else:
        best = chosen.iloc[0]
        verdict = (
            f"**Best variant by validation accuracy: `{best.variant}`** "
            f"(validation accuracy {best.val_accuracy:.4f}, validation loss {best.final_val_loss:.4f}; "
            "ties go to the lower validation loss). Its test accuracy "
            f"({best.test_accuracy:.4f}) is reported, not used to choose."
        )
    notes = [
        verdict,
        "- `train_accuracy` is on the rows the model was fitted on, in eval mode (no dropout, no noise); "
        "`val_accuracy` on the validation share carved from the training split; `test_accuracy` on the "
        "held-out test split. All at the last epoch.",
        "- `generalization_gap` = train accuracy − test accuracy.",
        f"- `near_zero_weight_share`: share of weight-matrix entries with |w| < {report.near_zero_threshold:g} "
        "(biases excluded); `weight_l1_norm` = Σ|W| over the weight matrices (the L1 term is λ times it).",
        "- `training_seconds`: wall-clock time of the training loop on this machine.",
        _dropout_section(dropout_demo),
    ]
    return markdown_table(table, "Regularization variants on the MLP", notes)


def _dropout_section(demo: dict[str, Any]) -> str:
    def matrix(rows: list[list[float]]) -> str:
        return "\n".join(" ".join(f"{v:5g}" for v in row) for row in rows)

    return (
        f"## Dropout demonstration (p = {demo['p']:g})\n\n"
        f"In train mode {demo['dropped_share']:.0%} of the entries are zeroed and the survivors are "
        f"multiplied by 1/(1−p) = {demo['scale']:g}, so the expected value of each entry is unchanged; "
        "in eval mode the layer is the identity.\n\n"
        f"Input:\n```\n{matrix(demo['input'])}\n```\n"
        f"Train mode:\n```\n{matrix(demo['train_mode'])}\n```\n"
        f"Eval mode:\n```\n{matrix(demo['eval_mode'])}\n```"
    )


def plot_variants(*results: dict[str, Any]) -> Figure:
    """Every variant's loss and validation accuracy per epoch, overlaid."""
    return plot_histories(
        results,
        ["train_loss", "val_loss", "val_accuracy"],
        "Regularization variants (train loss without the L1 term)",
    )
