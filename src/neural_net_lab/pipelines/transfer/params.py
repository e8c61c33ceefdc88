"""The typed ``transfer`` block: the new market, the learning curve, the strategies."""

from __future__ import annotations

from typing import ClassVar, Literal

from pydantic import Field, StrictInt, model_validator

from neural_net_lab.engine.config import Block, NonNegativeInt, PositiveFloat, PositiveInt
from neural_net_lab.engine.errors import setting_error
from neural_net_lab.engine.overrides import TrainingOverrides
from neural_net_lab.linear_baseline import LogisticBaselineParams
from neural_net_lab.table import DataProcessingParams

# One pipeline instance per name, each reading its block transfer.strategies.<name>. Kedro
# builds pipelines before it reads parameters, so a new strategy needs its name here too.
STRATEGIES = ("freeze", "finetune", "scratch")


class TargetParams(DataProcessingParams):
    """The new market: its price tiers and how its table is split."""

    classes: list[StrictInt] = Field(min_length=2)


class LearningCurveParams(Block):
    """Nested stratified subsets of these sizes, plus all the rows, ``repeats`` times."""

    sizes: list[PositiveInt] = Field(min_length=1)
    repeats: PositiveInt
    seed: NonNegativeInt


class StrategyParams(Block):
    """One way to adapt the source network; one MLflow child run."""

    name: str = Field(min_length=1)
    init: Literal["pretrained", "random"]
    freeze: bool = False  # true: the hidden layers keep the source weights
    hidden_lr_factor: PositiveFloat = 1.0  # hidden layers' lr relative to the head's


class TransferParams(Block):
    """``transfer`` in parameters_transfer.yml."""

    block_path: ClassVar[str] = "transfer"

    target: TargetParams
    learning_curve: LearningCurveParams
    training: TrainingOverrides | None = None  # type: ignore[valid-type]
    baseline: LogisticBaselineParams
    strategies: dict[str, StrategyParams]

    @model_validator(mode="after")
    def _one_block_per_pipeline_instance(self) -> TransferParams:
        if sorted(self.strategies) != sorted(STRATEGIES):
            rule = (
                f"the pipeline runs {list(STRATEGIES)}: list every strategy's name in "
                "STRATEGIES in pipelines/transfer/params.py"
            )
            raise setting_error("TransferParams", ("strategies",), rule, sorted(self.strategies))
        return self
