"""Training, one network or k: the engine's one entry point, ``train``.

Every pipeline trains through it: the default run and the experiments (``fit_classifier``,
one network), transfer's strategies (a pretrained network with parameter groups or frozen
layers), and cross-validation (k folds, ``engine.cv``). The data stays in memory as
tensors: one permutation per epoch from the member's generator, batches sliced from the
gathered rows, no DataLoader, and batch losses read once per epoch, so no step waits on a
host sync; trainings run on one CPU thread unless told otherwise (tiny matrices run
fastest so).

The networks train as one stack (``engine.stack``: hand-derived gradients, one optimizer
step for all) where the stack can take them, and through autograd (``engine.reference``)
where it cannot, with a warning that says why; ``training.gradients`` chooses: "auto",
"manual" (the stack or an error) or "autograd" (the reference). Both give the same numbers
up to float rounding; the epochs themselves run in ``engine.loop``.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import nn

from .augmentation import Augmentation, build_augmentation
from .config import TrainingParams
from .loop import Epochs, run_epochs
from .model import LayoutError, mlp_layout
from .reference import AutogradTraining
from .stack import Stack, StackingUnsupported

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class Member:
    """One network and what it trains on.

    ``features`` float32 (standardized), ``labels`` int64; ``generator`` draws the epoch's
    permutations, noise and dropout masks. ``validation`` (features, labels), if given, is
    scored after every epoch. ``parameters`` are what the optimizer trains: tensors of the
    network, or parameter groups with their own settings (``{"params": …, "lr": …}``);
    by default every parameter that requires a gradient. ``name`` names the network in
    errors and logs.
    """

    network: nn.Module
    features: torch.Tensor
    labels: torch.Tensor
    generator: torch.Generator
    validation: tuple[torch.Tensor, torch.Tensor] | None = None
    parameters: Iterable[torch.Tensor] | Iterable[dict[str, Any]] | None = None
    name: str = "training"
    _groups: list[dict[str, Any]] = field(init=False, repr=False, compare=False)

    def __post_init__(self) -> None:
        given = self.parameters
        if given is None:
            given = [p for p in self.network.parameters() if p.requires_grad]
        given = list(given)
        if given and isinstance(given[0], dict):
            groups = [{**group, "params": list(group["params"])} for group in given]
        else:
            groups = [{"params": given}]
        object.__setattr__(self, "_groups", groups)

    def parameter_groups(self) -> list[dict[str, Any]]:
        """The optimizer's parameter groups (copies: the optimizer may add its defaults)."""
        return [dict(group) for group in self._groups]


def train(
    members: Sequence[Member],
    training: TrainingParams,
    *,
    stacked: bool = True,
    on_epoch: Callable[[int, float], bool] | None = None,
    augmentation: Augmentation | None = None,
    description: str | None = None,
) -> list[dict[str, list[float]]]:
    """Trains every member's network in place with mini-batch cross-entropy, as the
    ``training`` block says; returns each one's per-epoch history.

    History keys: ``train_loss`` (cross-entropy per training row over the epoch, without the
    L1 penalty, so that variants compare), and with validation rows ``val_loss`` and
    ``val_accuracy``. Each member gets what a training of it alone gets, whatever else
    trains beside it. ``stacked`` False trains each member as a stack of its own (the
    members still advance epoch by epoch together). ``on_epoch`` and the NaN check: see
    ``engine.loop.run_epochs``. ``augmentation`` replaces the block's (a test records the
    batches it sees). ``l1_lambda`` adds λ·Σ|W| over the trainable weight matrices (not
    biases) to the objective.
    """
    names = _check_members(members)
    settings = {
        "batch_size": training.batch_size,
        "l1_lambda": training.l1_lambda,
        "augmentation": augmentation or build_augmentation(training.augmentation),
    }
    description = description or (names[0] if len(names) == 1 else f"{len(names)} networks")
    trainings: list[Epochs] = []
    path = "autograd"
    if training.gradients != "autograd":
        try:
            together = [members] if stacked else [[member] for member in members]
            trainings = [Stack(group, training.optimizer, **settings) for group in together]
            path = "hand-derived"
        except StackingUnsupported as reason:
            if training.gradients == "manual":
                raise
            logger.warning("%s: trained through autograd, not stacked: %s", description, reason)
    if not trainings:
        trainings = [AutogradTraining(m, training.optimizer, **settings) for m in members]
    return run_epochs(
        trainings,
        names,
        epochs=training.epochs,
        threads=training.threads,
        progress=training.progress,
        description=f"{description} ({path} gradients)",
        on_epoch=on_epoch,
    )


def _check_members(members: Sequence[Member]) -> list[str]:
    """The members' names; a ``ValueError`` naming the member and the problem otherwise."""
    if not members:
        raise ValueError("train needs at least one member")
    names = []
    for index, member in enumerate(members):
        name = member.name if len(members) == 1 or member.name != "training" else f"member {index}"
        names.append(name)
        try:
            layout = mlp_layout(member.network)
            inputs, classes = layout.linears[0].in_features, layout.linears[-1].out_features
        except LayoutError:
            inputs = classes = None  # autograd takes it; its own layers check the widths
        parts = [("training", member.features, member.labels)]
        if member.validation is not None:
            parts.append(("validation", *member.validation))
        for rows, x, y in parts:
            if x.ndim != 2 or x.shape[0] == 0:
                raise ValueError(
                    f"{name}: the {rows} features are empty or not a matrix {tuple(x.shape)}"
                )
            if x.dtype != torch.float32 or y.dtype != torch.int64:
                raise ValueError(
                    f"{name}: {rows} features must be float32 and labels int64, got {x.dtype}, {y.dtype}"
                )
            if inputs is not None and x.shape[1] != inputs:
                raise ValueError(
                    f"{name}: the {rows} features have {x.shape[1]} columns but the network "
                    f"takes {inputs}"
                )
            if y.shape != (x.shape[0],):
                raise ValueError(
                    f"{name}: {x.shape[0]} {rows} rows but labels of shape {tuple(y.shape)}"
                )
            if classes is not None and (y.min() < 0 or y.max() >= classes):
                raise ValueError(
                    f"{name}: {rows} labels must lie in [0, {classes}) (the network's outputs), "
                    f"got {y.min().item()}..{y.max().item()}"
                )
    return names
