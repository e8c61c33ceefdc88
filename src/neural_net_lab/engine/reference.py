"""The reference path: the same training through ``loss.backward()`` and
``optimizer.step()``, with the stack's batches and random draws in the same order
(``engine.batches``), so the two agree to float rounding. It also trains what the stack
cannot: networks of another layout, and optimizers such as LBFGS.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import torch
from torch import nn
from torch.nn import functional as F

from .augmentation import Augmentation
from .optim import build_optimizer

if TYPE_CHECKING:
    from .config import OptimizerParams
    from .training import Member


class AutogradTraining:
    """One network through autograd, one epoch per ``epoch()``."""

    def __init__(
        self,
        member: Member,
        optimizer: OptimizerParams,
        *,
        batch_size: int,
        l1_lambda: float,
        augmentation: Augmentation | None,
    ):
        self.member, self.batch_size, self.augmentation = member, batch_size, augmentation
        self.l1_lambda = l1_lambda
        self.optimizer = build_optimizer(member.parameter_groups(), optimizer)
        self.penalised = [
            p
            for name, p in member.network.named_parameters()
            if name.endswith("weight") and p.requires_grad
        ]

    def epoch(self) -> list[dict[str, float]]:
        network, features, labels = self.member.network, self.member.features, self.member.labels
        generator, size = self.member.generator, self.batch_size
        network.train()
        order = torch.randperm(features.shape[0], generator=generator)
        shuffled_x, shuffled_y = features[order], labels[order]
        loss_sum = torch.zeros(())
        for start in range(0, features.shape[0], size):
            batch = shuffled_x[start : start + size]
            if self.augmentation is not None:
                batch = self.augmentation(batch, generator)
            loss_sum += self._step(batch, shuffled_y[start : start + size])
        record = {"train_loss": loss_sum.item() / features.shape[0]}
        if self.member.validation is not None:
            record["val_loss"], record["val_accuracy"] = evaluate(network, *self.member.validation)
        return [record]

    def _step(self, batch: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One step; returns the batch's summed cross-entropy (a tensor, read once per epoch).

        The step goes through a closure, so that LBFGS, which re-evaluates the objective
        during its line search, trains here too; other optimizers call it once.
        """
        losses = []

        def objective() -> torch.Tensor:
            self.optimizer.zero_grad(set_to_none=True)
            logits = _forward(self.member.network, batch, self.member.generator)
            loss = F.cross_entropy(logits, labels)
            losses.append(loss.detach())
            total = loss
            if self.l1_lambda:
                total = loss + self.l1_lambda * sum(w.abs().sum() for w in self.penalised)
            total.backward()
            return total

        self.optimizer.step(objective)
        return losses[0] * batch.shape[0]

    def finish(self) -> None:
        self.member.network.eval()


def _forward(model: nn.Module, batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
    """``model(batch)``, with the dropout masks of an ``nn.Sequential`` drawn from ``generator``.

    ``nn.Dropout`` draws from the global generator; drawing from the training's own, in the
    order the stack draws, gives autograd the same masks, so the two paths compare to float
    rounding with dropout too.
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
