"""Nodes of the optimizers pipeline that compute: the variant check before the trainings,
the exponentially weighted averages, and the optimizer paths over two-variable functions (the
``torch.optim`` settings and the lesson's formulas next to them; the functions and the paths
themselves are in ``surfaces``). The tables and Markdown are made in ``report``, the figures in
``plots``."""

from __future__ import annotations

import logging
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import pandas as pd
import torch

from neural_net_lab.engine.config import ModelParams, OptimizerParams, TrainingParams
from neural_net_lab.table import TableSchema
from neural_net_lab.variants import check_variant_blocks

from .params import EwaParams, FormulaPairsParams, TrajectoriesParams
from .report import ewa_column
from .surfaces import (
    Paths,
    lesson_adam_path,
    lesson_momentum_path,
    surface_named,
    torch_path,
    uncorrected_adam_factor,
)

logger = logging.getLogger(__name__)


def check_variants(  # noqa: PLR0917 - Kedro passes a node's inputs by position
    fit_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    test_set: pd.DataFrame,
    variants: Mapping[str, Any],  # as the parameters hold it: check_variant_blocks types it
    model: ModelParams,
    training: TrainingParams,
    schema: TableSchema,
) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame]:
    """Checks every variant's settings (the widths of the table too) and that the input
    tables hold the schema's inputs and label; passes the tables on unchanged.

    The trainings read the tables from this node, so a bad setting in any variant stops the
    run before the first epoch of any of them.
    """
    for name, (model_cfg, _) in check_variant_blocks(
        "optimizers", variants, model, training
    ).items():
        schema.network(model_cfg, f"optimizers: variant {name!r}: model")
    for frame, name in (
        (fit_set, "fit_set"),
        (validation_set, "validation_set"),
        (test_set, "test_set"),
    ):
        missing = [c for c in [*schema.inputs, schema.target] if c not in frame.columns]
        if missing:
            raise ValueError(
                f"{name}: missing column(s) {missing} of the table schema's inputs and label; "
                "rerun `kedro run --pipelines data_processing`"
            )
    logger.info("Optimizer variants checked: %s", ", ".join(map(str, variants)))
    return fit_set, validation_set, test_set


# ---- exponentially weighted average -----------------------------------------------------


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


def average_temperatures(temperatures: pd.DataFrame, ewa: EwaParams) -> pd.DataFrame:
    """Adds each β's average, without and with bias correction, to the temperature table."""
    table = temperatures.copy()
    for beta in ewa.betas:
        for corrected in (False, True):
            table[ewa_column(beta, corrected)] = exponentially_weighted_average(
                table["temperature"].tolist(), beta, corrected
            )
    return table


# ---- optimizer paths over two-variable functions ----------------------------------------


def optimizer_paths(trajectories: TrajectoriesParams) -> Paths:
    """Each function's path for each ``torch.optim`` optimizer, from one start, same steps."""
    return {
        name: {
            key: torch_path(surface_named(trajectories, name), setup.start, optimizer, setup.steps)
            for key, optimizer in setup.optimizers.items()
        }
        for name, setup in trajectories.root.items()
    }


# ---- the lesson's formulas next to PyTorch's --------------------------------------------


def formula_pair_paths(pairs: FormulaPairsParams, trajectories: TrajectoriesParams) -> Paths:
    """The lesson's momentum and Adam next to ``torch.optim`` settings, same start and steps."""
    surface = surface_named(trajectories, pairs.function)
    start, steps = trajectories.root[pairs.function].start, trajectories.root[pairs.function].steps
    lr, beta = pairs.momentum.lr, pairs.momentum.beta
    adam = pairs.adam
    betas = tuple(adam.betas)
    torch_adam = OptimizerParams(name="Adam", lr=adam.lr, betas=betas, eps=adam.eps)
    sgd = OptimizerParams(name="SGD", lr=lr, momentum=beta, dampening=1 - beta)
    sgd_scaled = OptimizerParams(name="SGD", lr=lr * (1 - beta), momentum=beta)
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
