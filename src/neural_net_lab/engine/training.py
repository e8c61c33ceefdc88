"""The training loop every pipeline uses."""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .manual_grad import ManualMLPGradient

logger = logging.getLogger(__name__)

# (batch features, generator) -> augmented batch features; applied to training batches only.
Augmentation = Callable[[torch.Tensor, torch.Generator], torch.Tensor]


def train(
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
    threads: int | None = 1,
    progress: bool = True,
    description: str = "training",
) -> dict[str, list[float]]:
    """Trains ``model`` with mini-batch cross-entropy; returns its per-epoch history.

    The data stays in memory as tensors: each epoch draws one permutation from ``generator``,
    gathers the rows once and slices batches from them, which avoids a DataLoader's
    per-sample collation. Batch losses are summed as detached tensors and read once per
    epoch, so no step waits on a host sync and no step's graph outlives it (the lesson kept a
    summed loss tensor with its graph across the epoch).

    ``gradients``: "manual" uses the hand-derived backward pass (plain MLPs only),
    "autograd" uses ``loss.backward()``, "auto" picks manual where it applies; both give the
    same gradients up to float rounding. ``l1_lambda`` adds λ·Σ|W| over the trainable weight
    matrices (not biases) to the objective. ``threads`` caps PyTorch's CPU threads while
    training: at batch 16 the matrices are so small that waking a second thread costs more
    than it saves; the previous setting is restored afterwards.

    History keys: ``train_loss`` (cross-entropy per training row over the epoch, without the
    L1 penalty, so that variants compare), and with ``validation`` also ``val_loss`` and
    ``val_accuracy``.
    """
    epochs_run = train_epochs(
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
        gradients=gradients,
    )
    history: dict[str, list[float]] = {"train_loss": []}
    if validation is not None:
        history.update(val_loss=[], val_accuracy=[])
    started = time.perf_counter()
    with cpu_threads(threads):
        bar = tqdm(
            epochs_run,
            total=epochs,
            desc=description,
            unit="epoch",
            disable=not progress,
            leave=False,
        )
        for record in bar:
            for key, value in record.items():
                history[key].append(value)
            postfix = {"loss": f"{record['train_loss']:.4f}"}
            if validation is not None:
                postfix["val_acc"] = f"{record['val_accuracy']:.3f}"
            bar.set_postfix(postfix)
    model.eval()
    logger.info(
        "%s: %d epochs in %.1f s (%s gradients), final train loss %.4f%s",
        description,
        epochs,
        time.perf_counter() - started,
        "hand-derived" if uses_manual_gradients(model, gradients) else "autograd",
        history["train_loss"][-1],
        f", validation accuracy {history['val_accuracy'][-1]:.3f}" if validation else "",
    )
    return history


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
) -> Iterator[dict[str, float]]:
    """``train``'s loop, one epoch per ``next()``: yields that epoch's ``train_loss`` (and
    ``val_loss``, ``val_accuracy`` with ``validation``).

    A generator lets a caller advance several trainings in lockstep (the folds of a
    cross-validation, whose mean after each epoch decides whether to stop) while each one
    stays exactly a plain ``train``. It leaves the thread count to the caller, because
    interleaved generators would restore each other's settings in the wrong order.
    The arguments are checked at the call, not at the first ``next()``.
    """
    for name, value in {"epochs": epochs, "batch_size": batch_size}.items():
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise ValueError(f"{name} must be a positive integer, got {value!r}")
    if gradients not in {"auto", "manual", "autograd"}:
        raise ValueError(f"gradients must be 'auto', 'manual' or 'autograd', got {gradients!r}")
    if features.shape[0] == 0:
        raise ValueError("there are no training rows")
    return _epochs(
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
        manual=uses_manual_gradients(model, gradients),
    )


def uses_manual_gradients(model: nn.Module, gradients: str) -> bool:
    """Whether ``gradients`` ("auto", "manual", "autograd") means the hand-derived pass."""
    return gradients == "manual" or (gradients == "auto" and ManualMLPGradient.supports(model))


def _epochs(
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
    manual: bool,
) -> Iterator[dict[str, float]]:
    step = _manual_step if manual else _autograd_step
    engine = ManualMLPGradient(model) if manual else model
    # The manual step wants one-hot targets; gathering them with the rows keeps batches views.
    targets = F.one_hot(labels, _output_width(model)).to(features.dtype) if manual else labels
    penalised = [p for n, p in model.named_parameters() if n.endswith("weight") and p.requires_grad]
    for _ in range(epochs):
        model.train()
        order = torch.randperm(features.shape[0], generator=generator)
        shuffled_x, shuffled_t = features[order], targets[order]
        loss_sum = torch.zeros(())
        for start in range(0, features.shape[0], batch_size):
            batch = shuffled_x[start : start + batch_size]
            if augmentation is not None:
                batch = augmentation(batch, generator)
            loss_sum += step(
                engine,
                optimizer,
                batch,
                shuffled_t[start : start + batch_size],
                generator,
                penalised=penalised,
                l1_lambda=l1_lambda,
            )
        record = {"train_loss": loss_sum.item() / features.shape[0]}
        if validation is not None:
            record["val_loss"], record["val_accuracy"] = evaluate(model, *validation)
        yield record
    model.eval()


def _manual_step(
    engine: ManualMLPGradient,
    optimizer: torch.optim.Optimizer,
    batch: torch.Tensor,
    one_hot: torch.Tensor,
    generator: torch.Generator,
    *,
    penalised: list[torch.Tensor],
    l1_lambda: float,
) -> torch.Tensor:
    loss_sum = engine.loss_and_gradients(batch, one_hot, generator)
    if l1_lambda:
        with torch.no_grad():
            for weight in penalised:
                # d|w|/dw = sign(w), 0 at 0 like autograd's abs.
                weight.grad.add_(torch.sign(weight), alpha=l1_lambda)
    optimizer.step()
    return loss_sum


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
    optimizer.zero_grad(set_to_none=True)
    loss = F.cross_entropy(model(batch), labels)
    objective = loss + l1_lambda * sum(w.abs().sum() for w in penalised) if l1_lambda else loss
    objective.backward()
    optimizer.step()
    return loss.detach() * batch.shape[0]


@contextmanager
def cpu_threads(threads: int | None):
    """Caps PyTorch's CPU threads at ``threads`` (None: leaves them) and restores them after."""
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


@torch.no_grad()
def evaluate(model: nn.Module, features: torch.Tensor, labels: torch.Tensor) -> tuple[float, float]:
    """Mean cross-entropy and accuracy of ``model`` in eval mode."""
    was_training = model.training
    model.eval()
    logits = model(features)
    model.train(was_training)
    loss = F.cross_entropy(logits, labels).item()
    return loss, (logits.argmax(dim=1) == labels).float().mean().item()


def _output_width(model: nn.Module) -> int:
    linears = [m for m in model.modules() if isinstance(m, nn.Linear)]
    if not linears:
        raise TypeError("the model has no Linear layer to read its number of classes from")
    return linears[-1].out_features
