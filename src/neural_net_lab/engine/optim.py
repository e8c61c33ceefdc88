"""Optimizer factory: any ``torch.optim`` class by name, with its settings from parameters."""

from __future__ import annotations

import inspect
from collections.abc import Iterable
from typing import Any

import torch

from .config import OptimizerParams, optimizer_class


def build_optimizer(
    params: Iterable[torch.nn.Parameter] | Iterable[dict[str, Any]],
    config: OptimizerParams,
) -> torch.optim.Optimizer:
    """Builds ``torch.optim.<name>(params, **settings)`` from an optimizer block.

    ``params`` may be parameter groups (dicts with their own ``lr``). Where the class has a
    fused implementation and the config does not choose, the fused one is used: on the CPU it
    updates every tensor in one kernel instead of a Python loop, with the same arithmetic.
    """
    cls = optimizer_class(config.name)
    settings = config.settings()
    if "fused" in inspect.signature(cls.__init__).parameters:
        settings.setdefault("fused", True)
    return cls(params, **settings)
