"""Augmentations of standardized tabular batches, chosen by name from parameters."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch

from .training import Augmentation


def gaussian_noise(std: float) -> Augmentation:
    """Adds N(0, std²) to every standardized feature: nearby phones, same price tier."""

    def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return batch + std * torch.randn(batch.shape, generator=generator, dtype=batch.dtype)

    return augment


_FACTORIES = {"gaussian_noise": gaussian_noise}


def build_augmentation(config: Mapping[str, Any] | None, where: str = "augmentation") -> Augmentation | None:
    """``None`` → no augmentation; ``{name: gaussian_noise, std: 0.1}`` → that transform."""
    if config is None:
        return None
    if not isinstance(config, Mapping) or config.get("name") not in _FACTORIES:
        raise ValueError(f"{where}.name must be one of {sorted(_FACTORIES)}, got {config!r}")
    settings = {k: v for k, v in config.items() if k != "name"}
    std = settings.get("std")
    if set(settings) != {"std"} or isinstance(std, bool) or not isinstance(std, (int, float)) or std < 0:
        raise ValueError(f"{where}: gaussian_noise takes one setting, std >= 0; got {settings!r}")
    return _FACTORIES[config["name"]](**settings)
