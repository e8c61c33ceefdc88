"""Typed parameter blocks of the optimizers pipeline (its variants are
``engine.overrides.VariantParams``)."""

from __future__ import annotations

from typing import Annotated, ClassVar, Literal

from pydantic import Field, RootModel

from neural_net_lab.engine.config import (
    Block,
    NonNegativeInt,
    Number,
    OptimizerParams,
    PositiveFloat,
    PositiveInt,
    Share,
)
from neural_net_lab.engine.errors import PathErrors

Pair = Annotated[list[Number], Field(min_length=2, max_length=2)]


class OptimizersReportParams(Block):
    """``optimizers_report``."""

    block_path: ClassVar[str] = "optimizers_report"

    target_val_accuracy: Annotated[float, Field(ge=0, le=1)]


class EwaParams(Block):
    """``optimizers_ewa``: the lesson's temperatures and the βs averaged over them."""

    block_path: ClassVar[str] = "optimizers_ewa"

    seed: NonNegativeInt
    days: PositiveInt
    scale: Number
    betas: list[Share] = Field(min_length=1)


class FunctionParams(Block):
    """A two-variable function by ``kind``; ``a`` and ``b`` default to the kind's own."""

    kind: Literal["elongated_quadratic", "rosenbrock"]
    a: Number | None = None
    b: Number | None = None


class TrajectoryParams(Block):
    """Optimizer paths over one function: from ``start``, ``steps`` steps each."""

    function: FunctionParams
    start: Pair
    steps: PositiveInt
    optimizers: dict[str, OptimizerParams] = Field(min_length=1)


class TrajectoriesParams(PathErrors, RootModel[dict[str, TrajectoryParams]]):
    """``optimizers_trajectories``: one block per function, by name."""

    block_path: ClassVar[str] = "optimizers_trajectories"


class LessonMomentumParams(Block):
    lr: PositiveFloat
    beta: Share


class LessonAdamParams(Block):
    lr: PositiveFloat
    betas: Annotated[list[Share], Field(min_length=2, max_length=2)]
    eps: PositiveFloat


class FormulaPairsParams(Block):
    """``optimizers_formula_pairs``: the lesson's formulas on one function of
    ``optimizers_trajectories`` (its start and steps)."""

    block_path: ClassVar[str] = "optimizers_formula_pairs"

    function: str
    momentum: LessonMomentumParams
    adam: LessonAdamParams
