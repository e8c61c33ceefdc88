"""A variant's changes to the default blocks, and the one function that applies them.

Variants, tuning trials, transfer and the tuned environment all build their blocks with
``with_overrides``, so a configuration is merged and validated once, as one block at the
path where its changes were written.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Annotated, Any, TypeVar

from pydantic import Field, create_model, model_validator

from .config import Block, ModelParams, OptimizerParams, Params, TrainingParams
from .optim import check_settings

B = TypeVar("B", bound=Params)


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
