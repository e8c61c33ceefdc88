"""Typed parameter blocks shared by every pipeline that builds or trains the network.

A node argument typed with one of these models (``params:training`` → ``TrainingParams``) is
converted and validated by Kedro before any node runs, so a bad value stops the run at once
and the error names its parameter path. Unknown keys are errors: a typo must not be ignored.
"""

from __future__ import annotations

from typing import Annotated, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, StrictInt, model_validator

PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]
NonNegativeFloat = Annotated[float, Field(ge=0, allow_inf_nan=False)]


class Block(BaseModel):
    """A parameter block: unknown keys are refused, assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ColumnsParams(Block):
    """The phone table's columns (``columns`` in parameters.yml)."""

    features: list[str] = Field(min_length=1)
    target: str
    id: str | None = None
    classes: list[StrictInt] = Field(min_length=2)


class ModelParams(Block):
    """The MLP: ``input_dim`` → ``hidden_dims`` … → ``n_classes`` logits."""

    input_dim: PositiveInt
    hidden_dims: list[PositiveInt]
    n_classes: Annotated[StrictInt, Field(ge=2)]
    negative_slope: NonNegativeFloat = 0.01
    dropout: Annotated[float, Field(ge=0, lt=1)] = 0.0


class OptimizerParams(BaseModel):
    """Any ``torch.optim`` class by ``name`` with its keyword settings (extra keys allowed).

    The settings are checked against the class's signature here, so an unknown optimizer or
    setting fails with the parameters, before any node runs.
    """

    model_config = ConfigDict(extra="allow")

    name: str

    @model_validator(mode="after")
    def _known_settings(self) -> OptimizerParams:
        from .optim import validate_optimizer_config  # torch.optim is looked up lazily

        validate_optimizer_config(self.settings() | {"name": self.name}, "optimizer")
        return self

    def settings(self) -> dict[str, Any]:
        """The keyword settings passed to the optimizer's constructor (everything but name)."""
        return dict(self.model_extra or {})


class AugmentationParams(Block):
    """Gaussian noise on standardized training batches."""

    name: Literal["gaussian_noise"]
    std: NonNegativeFloat


class TrainingParams(Block):
    """How the network is trained (``training`` in parameters_training.yml)."""

    seed: NonNegativeInt
    epochs: PositiveInt
    batch_size: PositiveInt
    validation_share: Annotated[float, Field(ge=0, lt=1)] = 0.1
    optimizer: OptimizerParams
    l1_lambda: NonNegativeFloat = 0.0
    augmentation: AugmentationParams | None = None
    gradients: Literal["auto", "manual", "autograd"] = "auto"
    threads: PositiveInt | None = 1
    progress: bool = True
