"""Typed parameter blocks of the regularization experiment (its variants are
``engine.overrides.VariantParams``)."""

from __future__ import annotations

from typing import ClassVar

from pydantic import Field, model_validator

from neural_net_lab.engine.config import Block, NonNegativeInt, PositiveFloat, PositiveInt, Share
from neural_net_lab.engine.errors import setting_error


class RegularizationReportParams(Block):
    """``regularization_report``."""

    block_path: ClassVar[str] = "regularization_report"

    near_zero_threshold: PositiveFloat  # |w| below this counts as a near-zero weight


class DropoutDemoParams(Block):
    """``regularization_dropout_demo``: random integers through nn.Dropout."""

    block_path: ClassVar[str] = "regularization_dropout_demo"

    seed: NonNegativeInt
    shape: list[PositiveInt] = Field(min_length=1)
    # From 1 up, so that every zero in the train-mode output is a dropped unit.
    low: PositiveInt
    high: PositiveInt  # exclusive
    p: Share

    @model_validator(mode="after")
    def _range_not_empty(self) -> DropoutDemoParams:
        if self.high <= self.low:
            raise setting_error(
                "DropoutDemoParams", ("high",), f"must be > low ({self.low})", self.high
            )
        return self
