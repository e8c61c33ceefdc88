"""Typed parameter blocks shared by every pipeline that builds or trains the network.

A node argument typed with one of these models (``params:training`` → ``TrainingParams``) is
converted and validated by Kedro before any node runs, so a bad value stops the run at once.
Unknown keys are errors: a typo must not be ignored. How a bad value is reported lives in
``engine.errors``; a variant's changes to these blocks in ``engine.overrides``.
"""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictBool,
    StrictFloat,
    StrictInt,
    model_validator,
)
from pydantic_core import PydanticCustomError

from .errors import ParameterError, PathErrors
from .optim import check_settings

PositiveInt = Annotated[StrictInt, Field(ge=1)]
NonNegativeInt = Annotated[StrictInt, Field(ge=0)]


def _not_a_bool(value: Any) -> Any:
    # pydantic reads true as 1.0; a flag where a number belongs is a mistake.
    if isinstance(value, bool):
        raise PydanticCustomError("float_type", "must be a number")
    return value


# Finite numbers; strings like "1e-3" (YAML reads 1e-3 without a dot as a string) convert.
Number = Annotated[float, BeforeValidator(_not_a_bool), Field(allow_inf_nan=False)]
NonNegativeFloat = Annotated[Number, Field(ge=0)]
PositiveFloat = Annotated[Number, Field(gt=0)]
Share = Annotated[Number, Field(ge=0, lt=1)]


class Params(PathErrors, BaseModel):
    """A parameter block (see ``PathErrors``)."""


class Block(Params):
    """A parameter block: unknown keys are refused, assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


# A class label as YAML writes it: an integer, a string or a boolean (floats are numbers too).
Label = StrictBool | StrictInt | StrictFloat | str


class ColumnsParams(Block):
    """Which columns of the table are what (``columns`` in parameters.yml).

    Only ``target`` is required: the features (every column but the label and the id), the
    classes (the labels that occur) and the network's widths are derived from the table and
    recorded in its schema (``neural_net_lab.table``). A value given here is a checked
    override: ``features`` selects and orders columns, ``classes`` fixes the class order.
    """

    block_path: ClassVar[str] = "columns"

    target: str = Field(min_length=1)
    id: str | None = None  # None: a column named "id" (any case), if the table has one
    features: list[str] | None = Field(default=None, min_length=1)
    classes: list[Label] | None = Field(default=None, min_length=2)


class ModelParams(Block):
    """The MLP: ``input_dim`` → ``hidden_dims`` … → ``n_classes`` logits.

    The two widths are derived from the table's schema (``table.TableSchema.network``); a
    value given here is checked against it before anything trains.
    """

    block_path: ClassVar[str] = "model"

    input_dim: PositiveInt | None = None
    hidden_dims: list[PositiveInt]
    n_classes: Annotated[StrictInt, Field(ge=2)] | None = None
    negative_slope: NonNegativeFloat = 0.01
    dropout: Share = 0.0

    def widths(self) -> tuple[int, int]:
        """``input_dim`` and ``n_classes``; an error when they were never derived."""
        if self.input_dim is None or self.n_classes is None:
            raise ParameterError(
                "model.input_dim and model.n_classes are derived from the table's schema "
                "(table_schema, written by data_processing) before a network is built; "
                f"this block has input_dim={self.input_dim}, n_classes={self.n_classes}"
            )
        return self.input_dim, self.n_classes


class OptimizerParams(Params):
    """Any ``torch.optim`` class by ``name`` with its keyword settings (extra keys allowed).

    The common settings have typed fields with their ranges; every setting is checked against
    the class's signature, and the optimizer is built once on a dummy tensor so that its
    constructor's own checks (Adam's betas below 1, nesterov without momentum) fail with the
    parameters, before any node runs.
    """

    model_config = ConfigDict(extra="allow", validate_assignment=True)
    block_path: ClassVar[str] = "optimizer"

    name: str
    lr: PositiveFloat | None = None
    momentum: NonNegativeFloat | None = None
    dampening: NonNegativeFloat | None = None
    weight_decay: NonNegativeFloat | None = None
    alpha: NonNegativeFloat | None = None
    lr_decay: NonNegativeFloat | None = None
    eps: NonNegativeFloat | None = None
    initial_accumulator_value: NonNegativeFloat | None = None
    rho: NonNegativeFloat | None = None
    lambd: NonNegativeFloat | None = None
    t0: NonNegativeFloat | None = None

    @model_validator(mode="after")
    def _accepted_by_torch(self) -> OptimizerParams:
        check_settings(self.name, self.settings())
        return self

    def settings(self) -> dict[str, Any]:
        """The keyword settings passed to the optimizer's constructor (everything but name)."""
        return {k: v for k, v in self.model_dump(exclude_unset=True).items() if k != "name"}


class AugmentationParams(Block):
    """Gaussian noise on standardized training batches."""

    name: Literal["gaussian_noise"]
    std: NonNegativeFloat


class TrainingParams(Block):
    """How the network is trained (``training`` in parameters_training.yml)."""

    block_path: ClassVar[str] = "training"

    seed: NonNegativeInt
    epochs: PositiveInt
    batch_size: PositiveInt
    validation_share: Share = 0.1
    optimizer: OptimizerParams
    l1_lambda: NonNegativeFloat = 0.0
    augmentation: AugmentationParams | None = None
    gradients: Literal["auto", "manual", "autograd"] = "auto"
    threads: PositiveInt | None = 1
    progress: bool = True
