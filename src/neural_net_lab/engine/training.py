"""The training loop every pipeline uses: a stack of one, or autograd as the reference."""

from __future__ import annotations

import logging
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .augmentation import Augmentation, build_augmentation
from .config import TrainingParams
from .optim import build_optimizer
from .stacked import StackingUnsupported, stack_of_one
from .threads import cpu_threads

__all__ = ["Augmentation", "cpu_threads", "evaluate", "start_training", "train", "train_epochs"]

logger = logging.getLogger(__name__)


def train(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    threads: int | None = 1,
    progress: bool = True,
    **loop: Any,
) -> dict[str, list[float]]:
    """Trains ``model`` with mini-batch cross-entropy; returns its per-epoch history.

    The network trains as a stack of one (``engine.stacked``): the forward pass, the
    hand-derived backward pass and the optimizer step that cross-validation's k stacked
    folds run, so a change to training is made once and a single network gets the same
    shuffles, dropout masks, noise and step counts as the stacked member with its seed. The
    data stays in memory as tensors (one permutation per epoch from ``generator``, batches
    sliced from the gathered rows, no DataLoader collation), and batch losses are summed as
    tensors and read once per epoch, so no step waits on a host sync.

    ``loop`` holds ``train_epochs``' settings (``epochs``, ``batch_size`` and ``generator``
    required). ``gradients``: "auto" trains through the stack of one where it applies (a ``build_mlp``
    network, any optimizer but LBFGS and SparseAdam) and through autograd otherwise, with a
    log line that names the reason; "manual" insists on the stack of one; "autograd" is the
    reference path (``loss.backward()``). Both give the same results up to float rounding.
    ``l1_lambda`` adds λ·Σ|W| over the trainable weight matrices (not biases) to the
    objective. ``threads`` caps PyTorch's CPU threads while training (tiny matrices run
    fastest on one); the previous setting is restored afterwards.

    History keys: ``train_loss`` (cross-entropy per training row over the epoch, without the
    L1 penalty, so that variants compare), and with ``validation`` also ``val_loss`` and
    ``val_accuracy``.
    """
    return train_epochs(model, optimizer, features, labels, **loop).history(threads, progress)


def start_training(
    model: nn.Module,
    parameters: Iterable[nn.Parameter] | Iterable[dict[str, Any]],
    features: torch.Tensor,
    labels: torch.Tensor,
    training: TrainingParams,
    *,
    generator: torch.Generator,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    description: str = "training",
) -> Epochs:
    """``train_epochs`` as the ``training`` block says: its optimizer over ``parameters`` (the
    trainable tensors, or parameter groups with their own ``lr``), its epochs, batches, L1
    term, augmentation and gradients. The one place a typed block becomes the loop's settings.

    Step the result for trainings in lockstep (cross-validation's folds), or run it whole
    with ``.history(training.threads, training.progress)``.
    """
    return train_epochs(
        model,
        build_optimizer(parameters, training.optimizer),
        features,
        labels,
        epochs=training.epochs,
        batch_size=training.batch_size,
        generator=generator,
        validation=validation,
        l1_lambda=training.l1_lambda,
        augmentation=build_augmentation(training.augmentation),
        gradients=training.gradients,
        description=description,
    )


def train_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    l1_lambda: float = 0.0,
    augmentation: Augmentation | None = None,
    gradients: str = "auto",
    description: str = "training",
) -> Epochs:
    """``train``'s loop, one epoch per ``next()``: yields that epoch's ``train_loss`` (and
    ``val_loss``, ``val_accuracy`` with ``validation``).

    An iterator lets a caller advance several trainings in lockstep (the folds of a
    cross-validation, whose mean after each epoch decides whether to stop) while each one
    stays exactly a plain ``train``. It leaves the thread count to the caller, because
    interleaved trainings would restore each other's settings in the wrong order.
    The arguments are checked, and the path chosen, at the call, not at the first ``next()``.
    """
    for name, value in {"epochs": epochs, "batch_size": batch_size}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if gradients not in {"auto", "manual", "autograd"}:
        raise ValueError(f"gradients must be 'auto', 'manual' or 'autograd', got {gradients!r}")
    if features.shape[0] == 0:
        raise ValueError("there are no training rows")
    if gradients != "autograd":
        try:
            stack = stack_of_one(
                model,
                optimizer,
                features,
                labels,
                generator=generator,
                batch_size=batch_size,
                validation=validation,
                l1_lambda=l1_lambda,
            )
        except StackingUnsupported as reason:
            if gradients == "manual":
                raise
            logger.info("%s trains through autograd: %s", description, reason)
        else:
            run = _stacked_epochs(model, stack, epochs, augmentation)
            return Epochs(model, "hand-derived", run, epochs, validation is not None, description)
    epochs_run = _autograd_epochs(
        model,
        optimizer,
        features,
        labels,
        epochs=epochs,
        batch_size=batch_size,
        generator=generator,
        validation=validation,
        l1_lambda=l1_lambda,
        augmentation=augmentation,
    )
    return Epochs(model, "autograd", epochs_run, epochs, validation is not None, description)


@dataclass
class Epochs(Iterator[dict[str, float]]):
    """The ``total`` epochs of one training, and which ``gradients`` path computes them."""

    model: nn.Module
    gradients: str
    records: Iterator[dict[str, float]]
    total: int
    validated: bool
    description: str

    def __next__(self) -> dict[str, float]:
        return next(self.records)

    def history(self, threads: int | None = 1, progress: bool = True) -> dict[str, list[float]]:
        """Runs the epochs left with at most ``threads`` CPU threads (then restored), a
        progress bar and a closing log line; returns their per-epoch history."""
        history: dict[str, list[float]] = {"train_loss": []}
        if self.validated:
            history.update(val_loss=[], val_accuracy=[])
        started = time.perf_counter()
        with cpu_threads(threads):
            bar = tqdm(
                self,
                total=self.total,
                desc=self.description,
                unit="epoch",
                disable=not progress,
                leave=False,
            )
            for record in bar:
                for key, value in record.items():
                    history[key].append(value)
                postfix = {"loss": f"{record['train_loss']:.4f}"}
                if self.validated:
                    postfix["val_acc"] = f"{record['val_accuracy']:.3f}"
                bar.set_postfix(postfix)
        self.model.eval()
        logger.info(
            "%s: %d epochs in %.1f s (%s gradients), final train loss %.4f%s",
            self.description,
            self.total,
            time.perf_counter() - started,
            self.gradients,
            history["train_loss"][-1],
            f", validation accuracy {history['val_accuracy'][-1]:.3f}" if self.validated else "",
        )
        return history


def _stacked_epochs(
    model: nn.Module, stack, epochs: int, augmentation: Augmentation | None
) -> Iterator[dict[str, float]]:
    model.train()
    for _ in range(epochs):
        yield stack.epoch(augmentation)[0]
    model.eval()


def _autograd_epochs(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    epochs: int,
    batch_size: int,
    generator: torch.Generator,
    validation: tuple[torch.Tensor, torch.Tensor] | None,
    l1_lambda: float,
    augmentation: Augmentation | None,
) -> Iterator[dict[str, float]]:
    """The reference: ``loss.backward()`` and ``optimizer.step()``, batches and random draws
    in the stacked path's order (see ``_forward``)."""
    penalised = [p for n, p in model.named_parameters() if n.endswith("weight") and p.requires_grad]
    for _ in range(epochs):
        model.train()
        order = torch.randperm(features.shape[0], generator=generator)
        shuffled_x, shuffled_y = features[order], labels[order]
        loss_sum = torch.zeros(())
        for start in range(0, features.shape[0], batch_size):
            batch = shuffled_x[start : start + batch_size]
            if augmentation is not None:
                batch = augmentation(batch, generator)
            target = shuffled_y[start : start + batch_size]
            loss_sum += _autograd_step(
                model, optimizer, batch, target, generator, penalised=penalised, l1_lambda=l1_lambda
            )
        record = {"train_loss": loss_sum.item() / features.shape[0]}
        if validation is not None:
            record["val_loss"], record["val_accuracy"] = evaluate(model, *validation)
        yield record
    model.eval()


def _autograd_step(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    labels: torch.Tensor,
    generator: torch.Generator,
    *,
    penalised: list[torch.Tensor],
    l1_lambda: float,
) -> torch.Tensor:
    """One step; returns the batch's summed cross-entropy (a tensor, read once per epoch).

    The step goes through a closure, so that LBFGS, which re-evaluates the objective during
    its line search, trains here too; other optimizers call it once.
    """
    losses = []

    def objective() -> torch.Tensor:
        optimizer.zero_grad(set_to_none=True)
        loss = F.cross_entropy(_forward(model, batch, generator), labels)
        losses.append(loss.detach())
        total = loss + l1_lambda * sum(w.abs().sum() for w in penalised) if l1_lambda else loss
        total.backward()
        return total

    optimizer.step(objective)
    return losses[0] * batch.shape[0]


def _forward(model: nn.Module, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``model(batch)``, with the dropout masks of an ``nn.Sequential`` drawn from ``generator``.

    ``nn.Dropout`` draws from the global generator; drawing from the training's own, in the
    order the stacked path draws, gives autograd the same masks, so the two paths compare to
    float rounding with dropout too.
    """
    if not isinstance(model, nn.Sequential):
        return model(batch)
    h = batch
    for layer in model:
        if isinstance(layer, nn.Dropout) and layer.training and layer.p > 0:
            keep = torch.rand(h.shape, generator=generator) >= layer.p
            h = h * keep.to(h.dtype).div_(1.0 - layer.p)
        else:
            h = layer(h)
    return h


@torch.no_grad()
def evaluate(model: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` in eval mode."""
    was_training = model.training
    model.eval()
    logits = model(features)
    model.train(was_training)
    loss = F.cross_entropy(logits, labels).item()
    return loss, (logits.argmax(dim=1) == labels).float().mean().item()
