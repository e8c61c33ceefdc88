"""Optimizer factory: any ``torch.optim`` class by name, with its settings from parameters."""

from __future__ import annotations

import inspect
from collections.abc import Iterable, Mapping
from numbers import Real
from typing import Any

import torch

# Settings that must be non-negative numbers when given; lr must be strictly positive.
_NON_NEGATIVE = {"momentum", "dampening", "weight_decay", "alpha", "lr_decay", "eps",
                 "initial_accumulator_value", "rho", "lambd", "t0"}  # fmt: skip


def optimizer_class(name: Any, where: str = "optimizer") -> type[torch.optim.Optimizer]:
    """Looks up ``torch.optim.<name>``; an unknown name is an error that lists the known ones."""
    known = sorted(
        n for n, obj in vars(torch.optim).items()
        if inspect.isclass(obj) and issubclass(obj, torch.optim.Optimizer)
        and obj is not torch.optim.Optimizer
    )  # fmt: skip
    if not isinstance(name, str) or name not in known:
        raise ValueError(f"{where}.name: unknown optimizer {name!r}; choose one of {known}")
    return getattr(torch.optim, name)


def validate_optimizer_config(config: Mapping[str, Any], where: str = "optimizer") -> None:
    """Checks name and settings against the optimizer's signature, before any training."""
    if not isinstance(config, Mapping) or "name" not in config:
        raise ValueError(f"{where} must be a mapping with a 'name' (e.g. Adam) and its settings")
    cls = optimizer_class(config["name"], where)
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
    for key, value in config.items():
        if key == "name":
            continue
        if key not in accepted:
            raise ValueError(
                f"{where}.{key}: {cls.__name__} has no setting {key!r}; it takes {sorted(accepted)}"
            )
        if key == "lr" and (isinstance(value, bool) or not isinstance(value, Real) or value <= 0):
            raise ValueError(f"{where}.lr must be a positive number, got {value!r}")
        if key in _NON_NEGATIVE and (
            isinstance(value, bool) or not isinstance(value, Real) or value < 0
        ):
            raise ValueError(f"{where}.{key} must be a non-negative number, got {value!r}")


def build_optimizer(
    params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
    config: Mapping[str, Any],
    where: str = "optimizer",
) -> torch.optim.Optimizer:
    """Builds ``torch.optim.<config['name']>(params, **settings)``.

    ``params`` may be parameter groups (dicts with their own ``lr``). Where the class has a
    fused implementation and the config does not choose, the fused one is used: on the CPU it
    updates every tensor in one kernel instead of a Python loop, with the same arithmetic.
    """
    validate_optimizer_config(config, where)
    cls = optimizer_class(config["name"], where)
    settings = {k: v for k, v in config.items() if k != "name"}
    if "fused" in inspect.signature(cls.__init__).parameters:
        settings.setdefault("fused", True)
    try:
        return cls(params, **settings)
    except (TypeError, ValueError, RuntimeError) as error:
        raise ValueError(f"{where}: {cls.__name__}({settings}) was refused: {error}") from error
