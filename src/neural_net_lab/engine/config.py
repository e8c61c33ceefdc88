"""Typed parameter blocks shared by every pipeline that builds or trains the network.

A node argument typed with one of these models (``params:training`` → ``TrainingParams``) is
converted and validated by Kedro before any node runs, so a bad value stops the run at once.
Unknown keys are errors: a typo must not be ignored.

Kedro reports a failed block as "Parameter 'training': ..." followed by our message, which
names each bad value by its full path and rule (``training.optimizer.lr: must be > 0, got
-1``): the path comes from the block's ``block_path`` and pydantic's error location.
"""

from __future__ import annotations

import copy
import functools
import inspect
from collections.abc import Mapping
from typing import Annotated, Any, ClassVar, Literal, TypeVar, get_args, get_origin

import torch
from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StrictInt,
    ValidationError,
    create_model,
    model_validator,
)
from pydantic_core import InitErrorDetails, PydanticCustomError
from torch import optim

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

B = TypeVar("B", bound="PathErrors")


class ParameterError(ValueError):
    """One or more parameters break their block's rules; the message names each by path."""


# pydantic's error types → the rule in words ({...} are filled from the error's context).
_RULES = {
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "missing": "is required",
    "int_type": "must be an integer",
    "int_parsing": "must be an integer",
    "int_from_float": "must be an integer",
    "float_type": "must be a number",
    "float_parsing": "must be a number",
    "finite_number": "must be a finite number",
    "bool_type": "must be true or false",
    "bool_parsing": "must be true or false",
    "string_type": "must be a string",
    "list_type": "must be a list",
    "tuple_type": "must be a list",
    "dict_type": "must be a block of settings",
    "model_type": "must be a block of settings",
    "model_attributes_type": "must be a block of settings",
    "literal_error": "must be one of {expected}",
    "too_short": "must hold at least {min_length} item(s)",
    "too_long": "must hold at most {max_length} item(s)",
    "string_too_short": "must not be empty",
}


def _path(root: str, loc: tuple[str | int, ...]) -> str:
    text = root
    for part in loc:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _model_at(model: type[BaseModel], loc: tuple[str | int, ...]) -> type[BaseModel] | None:
    """The model class that holds the setting at ``loc`` (to list its known keys)."""
    parts = iter(("root", *loc) if "root" in model.model_fields else loc)  # a RootModel
    for part in parts:
        field = model.model_fields.get(part) if isinstance(part, str) else None
        hints, found = [field.annotation] if field else [], None
        while hints and found is None:
            hint = hints.pop()
            if get_origin(hint) in (dict, list):
                next(parts, None)  # the key or index of the item inside the container
            if inspect.isclass(hint) and issubclass(hint, BaseModel):
                found = hint
            hints += get_args(hint)
        if found is None:
            return None
        model = found
    return model


def describe(error: ValidationError, root: str, model: type[BaseModel]) -> str:
    """One line per bad value: its full parameter path, the rule and the value given."""
    lines = []
    for item in error.errors(include_url=False):
        loc, kind, ctx = item["loc"], item["type"], item.get("ctx") or {}
        if kind == "extra_forbidden":
            owner = _model_at(model, loc[:-1])
            rule = "unknown setting (a typo?)"
            if owner is not None and owner.model_fields:
                rule += f"; known: {sorted(owner.model_fields)}"
        elif kind in _RULES:
            bounds = {
                k: int(v) if isinstance(v, float) and v.is_integer() else v for k, v in ctx.items()
            }  # "> 0", not "> 0.0"
            rule = _RULES[kind].format(**bounds)
        else:
            rule = item["msg"].removeprefix("Value error, ")
        shown = "" if kind == "missing" else f", got {_shown(item['input'])}"
        lines.append(f"{_path(root, loc)}: {rule}{shown}")
    return lines[0] if len(lines) == 1 else "\n  " + "\n  ".join(lines)


def setting_error(model: str, loc: tuple[str | int, ...], rule: str, value: Any) -> ValidationError:
    """A validation error at ``loc`` inside a block, raised from a validator that sees the
    whole block (pydantic prefixes the block's own location)."""
    detail = PydanticCustomError("setting", rule)  # type: ignore[call-overload]
    return ValidationError.from_exception_data(
        model, [InitErrorDetails(type=detail, loc=loc, input=value)]
    )


@functools.cache
def _known() -> dict[str, type[optim.Optimizer]]:
    return {
        name: obj
        for name, obj in vars(optim).items()
        if inspect.isclass(obj) and issubclass(obj, optim.Optimizer) and obj is not optim.Optimizer
    }


def optimizer_class(name: str) -> type[optim.Optimizer]:
    """``torch.optim.<name>``; an unknown name is a ValueError that lists the known ones."""
    if name not in _known():
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(_known())}")
    return _known()[name]


def check_settings(name: str, settings: Mapping[str, Any]) -> None:
    """Checks an optimizer block against torch: its name, each setting's name, and what the
    constructor itself refuses (tried once on a dummy tensor). Raises a validation error
    located at the bad setting, for ``OptimizerParams``."""
    try:
        cls = optimizer_class(name)
    except ValueError as error:
        raise setting_error("OptimizerParams", ("name",), str(error), name) from None
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
    for key, value in settings.items():
        if key not in accepted:
            rule = f"{name} has no setting {key!r}; it takes {sorted(accepted)}"
            raise setting_error("OptimizerParams", (key,), rule, value)
    try:
        cls([torch.zeros(1, requires_grad=True)], **settings)
    except (TypeError, ValueError, RuntimeError) as error:
        rule = f"{name} refused its settings: {error}"
        raise setting_error("OptimizerParams", (), rule, dict(settings)) from None


class PathErrors:
    """Validation errors that name each value by its full parameter path.

    ``block_path`` is where the block sits in the parameters (``training``); ``at(path)``
    gives the same model for a block elsewhere (``optimizers.sgd.training``). Kedro calls
    ``model_validate``, so the path is added there; nested blocks report through it.
    """

    block_path: ClassVar[str] = ""
    # Set on the classes made by ``at``: the model they stand for.
    located: ClassVar[type | None] = None

    @classmethod
    def model_validate(cls: type[B], obj: Any, *args: Any, **kwargs: Any) -> B:
        # An ``at`` class validates as the model it stands for, so that its instances are
        # plain ``TrainingParams`` (picklable, equal to others) and only errors differ.
        model = cls.located or cls
        try:
            return super(PathErrors, model).model_validate(obj, *args, **kwargs)  # type: ignore[misc]
        except ValidationError as error:
            raise ParameterError(describe(error, cls.block_path, model)) from error

    @classmethod
    @functools.cache
    def at(cls: type[B], path: str) -> type[B]:
        """This model for a block at ``path`` (errors name it), e.g. a variant's overrides."""
        namespace = {"__module__": cls.__module__, "block_path": path, "located": cls}
        return type(cls.__name__, (cls,), namespace)

    def dump(self) -> Any:
        """The settings as given in the parameters (defaults not given are left out)."""
        return self.model_dump(exclude_unset=True)  # type: ignore[attr-defined]


class Params(PathErrors, BaseModel):
    """A parameter block (see ``PathErrors``)."""


class Block(Params):
    """A parameter block: unknown keys are refused, assignments are validated too."""

    model_config = ConfigDict(extra="forbid", validate_assignment=True)


class ColumnsParams(Block):
    """The phone table's columns (``columns`` in parameters.yml)."""

    block_path: ClassVar[str] = "columns"

    features: list[str] = Field(min_length=1)
    target: str
    id: str | None = None
    classes: list[StrictInt] = Field(min_length=2)


class ModelParams(Block):
    """The MLP: ``input_dim`` → ``hidden_dims`` … → ``n_classes`` logits."""

    block_path: ClassVar[str] = "model"

    input_dim: PositiveInt
    hidden_dims: list[PositiveInt]
    n_classes: Annotated[StrictInt, Field(ge=2)]
    negative_slope: NonNegativeFloat = 0.01
    dropout: Share = 0.0


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


# ---- overrides: a variant's changes to the defaults -----------------------------------------


class OptimizerOverrides(OptimizerParams):
    """Changes to the default optimizer, with the same rules. With a ``name`` the block is
    checked whole (a new name replaces the default block); without one, only the merge with
    the defaults can be checked (``with_overrides``)."""

    name: str | None = None  # type: ignore[assignment]

    @model_validator(mode="after")
    def _accepted_by_torch(self) -> OptimizerOverrides:
        if self.name is not None:
            check_settings(self.name, self.settings())
        return self


def _overrides(model: type[Block]) -> type[Block]:
    """``model`` with every field optional, keeping each field's rule (a partial block)."""
    fields: dict[str, Any] = {}
    for name, info in model.model_fields.items():
        hint = OptimizerOverrides if info.annotation is OptimizerParams else info.annotation
        constrained = Annotated[hint, *info.metadata] if info.metadata else hint
        fields[name] = (constrained | None, None)
    return create_model(f"{model.__name__[: -len('Params')]}Overrides", __base__=Block, **fields)


ModelOverrides = _overrides(ModelParams)
TrainingOverrides = _overrides(TrainingParams)


def merge(base: Mapping[str, Any], overrides: Mapping[str, Any] | None) -> dict[str, Any]:
    """Deep-merges ``overrides`` into a copy of ``base`` (a variant's changes to defaults).

    A nested ``optimizer`` block is replaced whole when its name changes: Adam's betas make
    no sense for SGD.
    """
    merged = copy.deepcopy(dict(base))
    for key, value in (overrides or {}).items():
        old = merged.get(key)
        keep = isinstance(value, Mapping) and isinstance(old, Mapping)
        if keep and key == "optimizer" and value.get("name", old.get("name")) != old.get("name"):
            keep = False
        merged[key] = merge(old, value) if keep else copy.deepcopy(value)
    return merged


def with_overrides(defaults: B, overrides: Params | Mapping[str, Any] | None, path: str) -> B:
    """The defaults with a variant's overrides merged over them, validated as one block at
    ``path`` (errors name the variant's setting, e.g. ``optimizers.sgd.training.optimizer``)."""
    changes = overrides.dump() if isinstance(overrides, Params) else overrides
    return type(defaults).at(path).model_validate(merge(defaults.dump(), changes))


class VariantParams(Block):
    """One variant of an experiment: its MLflow run ``name`` and overrides of the defaults."""

    name: str = Field(min_length=1)
    model: ModelOverrides | None = None  # type: ignore[valid-type]
    training: TrainingOverrides | None = None  # type: ignore[valid-type]


def as_params(model: type[B], value: B | Mapping[str, Any]) -> B:
    """``value`` as ``model``: engine functions take typed blocks or plain mappings."""
    return value if isinstance(value, model) else model.model_validate(value)
