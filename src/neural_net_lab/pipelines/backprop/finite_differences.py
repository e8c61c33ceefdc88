"""Central finite differences of a loss over every weight and bias entry of an ``nn.Sequential``
of Linear and element-wise layers, batched: the check that uses no derivatives, for both the
lesson's network and the phone-price MLP."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from functools import partial

import numpy as np
import torch
from torch import nn

Gradients = dict[str, np.ndarray]


@contextmanager
def _one_cpu_thread() -> Iterator[None]:
    """The batches are a few MiB: a second thread costs more in waking and waiting than it
    saves, and on a busy machine (other processes on the cores) 15× more."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# Modules that act on each value on its own (dropout too: the checks run in eval mode).
_ELEMENTWISE = (nn.LeakyReLU, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Dropout, nn.Identity)


def _losses_with_unit_moved(
    model: nn.Sequential,
    index: int,
    output: torch.Tensor,
    *,
    columns: torch.Tensor,
    shift: torch.Tensor,
    loss_of_outputs: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Loss of copy k of the network in which unit ``columns[k]`` of Linear layer ``index``
    (whose output is ``output``, rows × units) is moved by ``shift[k]`` (one value per row).

    Up to the next Linear layer only that unit's activation changes, so the next layer's
    output moves by a rank-one term; the copies go through the rest of the network as one batch.
    """
    copies = len(columns)
    after = index + 1
    while after < len(model) and isinstance(model[after], _ELEMENTWISE):
        after += 1
    activation = model[index + 1 : after]
    if after == len(model):  # the last Linear layer: move the columns themselves
        moved = output.expand(copies, *output.shape).clone()
        moved[torch.arange(copies), :, columns] += shift
        return loss_of_outputs(activation(moved))
    following = model[after]
    if not isinstance(following, nn.Linear):
        raise TypeError(f"finite differences need Linear and element-wise layers, got {following}")
    unit = output[:, columns].T  # (copies, rows)
    change = activation(unit + shift) - activation(unit)
    # (copies, rows, out): the unit's change times its column of the next layer's weight
    rank_one = change.unsqueeze(-1) * following.weight.T[columns].unsqueeze(1)
    moved = following(activation(output)) + rank_one
    return loss_of_outputs(model[after + 1 :](moved))


def _moves(
    layer: nn.Linear, inputs: torch.Tensor, step: float
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """For each entry of the layer's weight and bias: the output unit that moving it by +h
    moves, and by how much on each row (``h·input[:, j]`` for weight entry (i, j), h for a bias)."""
    entries = torch.arange(layer.weight.numel())  # row-major [out, in]: entry = unit · in + input
    moves = {"weight": (entries // layer.in_features, step * inputs.T[entries % layer.in_features])}
    if layer.bias is not None:
        units = torch.arange(layer.out_features)
        moves["bias"] = (units, torch.full((len(units), len(inputs)), step, dtype=inputs.dtype))
    return moves


def central_differences(
    model: nn.Sequential,
    features: torch.Tensor,
    loss_of_outputs: Callable[[torch.Tensor], torch.Tensor],
    step: float,
) -> tuple[float, Gradients]:
    """(L(θ + h·e) − L(θ − h·e)) / 2h for every entry of every Linear layer's weight and bias.

    Each L(θ ± h·e) is the network's forward pass with one entry moved, computed without
    redoing what the move leaves unchanged: moving an entry of a layer moves only one unit of
    its output (see ``_moves``), so the layers below run once and chunks of perturbed copies
    go through the layers above as one batch. ``loss_of_outputs`` maps outputs
    (copies, rows, classes) to one loss per copy.
    """
    model.eval()  # dropout off: every method must see the same function
    gradients: Gradients = {}
    with torch.no_grad(), _one_cpu_thread():
        loss = float(loss_of_outputs(model(features)))
        widest = max(m.out_features for m in model if isinstance(m, nn.Linear))
        chunk = max(1, 2**22 // (features.shape[0] * widest))  # ≤ 32 MiB of float64 per batch
        below = features
        for index, (name, layer) in enumerate(model.named_children()):
            output = layer(below)
            if isinstance(layer, nn.Linear):
                moved = partial(
                    _losses_with_unit_moved, model, index, output, loss_of_outputs=loss_of_outputs
                )
                for kind, (units, shifts) in _moves(layer, below, step).items():
                    estimates = [
                        (moved(columns=u, shift=s) - moved(columns=u, shift=-s)) / (2 * step)
                        for u, s in zip(units.split(chunk), shifts.split(chunk))
                    ]
                    shape = getattr(layer, kind).shape
                    gradients[f"{name}.{kind}"] = torch.cat(estimates).view(shape).numpy()
            below = output
    return loss, gradients
