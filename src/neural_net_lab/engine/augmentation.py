"""Augmentations of standardized tabular batches, chosen by name from parameters."""

from __future__ import annotations

from collections.abc import Callable

import torch

from .config import AugmentationParams

# (batch features, generator) -> augmented batch features; applied to training batches only.
Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def gaussian_noise(std: float) -> Augmentation:
    """Adds N(0, std²) to every standardized feature: nearby phones, same price tier."""

    def augment(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        return batch + std * torch.randn(batch.shape, generator=generator, dtype=batch.dtype)

    return augment


def build_augmentation(config: AugmentationParams | None) -> Augmentation | None:
    """``None`` → no augmentation; a ``gaussian_noise`` block → that transform."""
    return None if config is None else gaussian_noise(config.std)
