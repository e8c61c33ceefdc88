"""An epoch's batches and random draws for K networks trained together (K = 1 for one).

Each member draws from its own generator, in one fixed order, exactly what a training of it
alone draws: per epoch the permutation of its rows, then per batch the augmentation noise
and one dropout mask per hidden layer. The autograd reference path
(``engine.reference``) draws the same numbers in the same order.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import torch

from .augmentation import Augmentation


@dataclass(frozen=True)
class Step:
    """One optimizer step: ``rows`` every member's batch has (-1 when they differ), who
    steps (``active``, None: all) and each member's batch rows."""

    rows: int
    active: tuple[int, ...] | None
    each: tuple[int, ...]


def plan(rows: Sequence[int], batch_size: int) -> list[Step]:
    """The steps of an epoch for members with ``rows`` training rows each.

    Members with fewer rows run out of batches first: from then on they sit the step out
    (no gradient, no optimizer update, their step count stays theirs).
    """
    steps = []
    for j in range(max(math.ceil(n / batch_size) for n in rows)):
        each = tuple(min(max(n - j * batch_size, 0), batch_size) for n in rows)
        if all(r == each[0] for r in each):
            steps.append(Step(each[0], None, each))
        else:
            steps.append(Step(-1, tuple(k for k, r in enumerate(each) if r), each))
    return steps


def shuffle(
    features: Sequence[torch.Tensor],
    targets: Sequence[torch.Tensor],
    generators: Sequence[torch.Generator],
    *,
    batch_size: int,
    steps: int,
    widths: Sequence[int],
    dropout: float,
    augmentation: Augmentation | None,
) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
    """This epoch's batches as ``[steps, K, batch, ·]`` tensors (features, one-hot targets and
    one dropout mask, scaled by 1/(1−p), per hidden layer of ``widths``), zero past each
    member's rows."""
    size, K = batch_size, len(features)
    dtype = features[0].dtype
    x = torch.zeros(K, steps * size, features[0].shape[1], dtype=dtype)
    t = torch.zeros(K, steps * size, targets[0].shape[1], dtype=dtype)
    draws = [torch.ones(K, steps * size, w) for w in widths] if dropout else []
    for k, generator in enumerate(generators):
        n = features[k].shape[0]
        order = torch.randperm(n, generator=generator)
        x[k, :n] = features[k][order]
        t[k, :n] = targets[k][order]
        if augmentation is not None:
            for start in range(0, n, size):
                end = min(start + size, n)
                x[k, start:end] = augmentation(x[k, start:end], generator)
                for d, w in zip(draws, widths):
                    d[k, start:end] = torch.rand((end - start, w), generator=generator)
        elif draws:
            _draw_masks(draws, widths, k, n, size, generator)
    layout = (K, steps, size)
    x = x.view(*layout, -1).transpose(0, 1).contiguous()
    t = t.view(*layout, -1).transpose(0, 1).contiguous()
    masks = []
    for d in draws:
        keep = (d >= dropout).to(dtype).div_(1.0 - dropout)
        masks.append(keep.view(*layout, -1).transpose(0, 1).contiguous())
    return x, t, masks


def _draw_masks(
    draws: list[torch.Tensor],
    widths: Sequence[int],
    k: int,
    n: int,
    size: int,
    generator: torch.Generator,
) -> None:
    # CPU torch.rand is one serial stream, so an epoch's masks can come from one call, cut
    # into what the batches draw one by one: batch 0's masks layer by layer, then batch 1's.
    total = sum(widths)
    stream = torch.rand(n * total, generator=generator)
    full = n // size
    head = stream[: full * size * total].view(full, size * total)
    tail = stream[full * size * total :]
    rest, offset = n - full * size, 0
    for d, w in zip(draws, widths):
        d[k, : full * size] = head[:, offset * size : (offset + w) * size].reshape(full * size, w)
        if rest:
            d[k, full * size : n] = tail[offset * rest : (offset + w) * rest].view(rest, w)
        offset += w
