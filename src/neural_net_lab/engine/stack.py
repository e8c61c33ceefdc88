"""K networks of one architecture, trained as one stack (K = 1 for one network).

At batch 16 most of a training step of the phone MLP is fixed cost per call (Python,
dispatch, the optimizer's wrapper). Here member k's weights are slice k of ``[K, out, in]``
tensors: one batched product runs a layer for every member, one hand-derived backward pass
(``engine.manual_grad``) fills every member's gradients, and one ``optimizer.step()``
(``engine.optim.StackedParameters``) updates them all. Each member computes what it would
compute alone with its rows and generator, to the bit on the development machines' CPU
builds (``benchmarks/cv_speed.py`` prints the weight difference):

- its generator draws its permutations, noise and dropout masks (``engine.batches``);
- a batched product computes each slice as ``mm``/``addmm`` does;
- its parameters have their own optimizer state; at a step where the members' batches
  differ in size (the last batch when folds differ by a row) each member runs on its own
  slice, and a member without a batch sits the optimizer step out.
"""

from __future__ import annotations

from collections.abc import Sequence
from itertools import repeat
from typing import TYPE_CHECKING, Any

import torch
from torch.nn import functional as F

from .augmentation import Augmentation
from .batches import plan, shuffle
from .manual_grad import Stacked, cross_entropy_step
from .model import LayoutError, mlp_layout
from .optim import StackedParameters, stacking_refusal

if TYPE_CHECKING:
    from .config import OptimizerParams
    from .training import Member


class StackingUnsupported(ValueError):
    """A network or setting the stack cannot train; autograd trains it instead."""


class Stack:
    """The members' networks as stacked tensors, with their data and optimizer, advanced
    one epoch at a time; ``finish`` writes the trained weights back into the networks."""

    def __init__(
        self,
        members: Sequence[Member],
        optimizer: OptimizerParams,
        *,
        batch_size: int,
        l1_lambda: float,
        augmentation: Augmentation | None,
    ):
        try:
            layouts = [mlp_layout(m.network) for m in members]
        except LayoutError as error:
            raise StackingUnsupported(str(error)) from None
        refusal = stacking_refusal(optimizer)
        if refusal:
            raise StackingUnsupported(refusal)
        self.networks = [m.network for m in members]
        self.linears = [layout.linears for layout in layouts]
        first = layouts[0]
        shapes = [[tuple(p.shape) for p in _tensors(layout.linears)] for layout in layouts]
        if any(s != shapes[0] for s in shapes) or any(
            (lay.negative_slope, lay.dropout) != (first.negative_slope, first.dropout)
            for lay in layouts
        ):
            raise StackingUnsupported("the networks of a stack must share one architecture")
        if any(p.dtype != members[0].features.dtype for p in _tensors(first.linears)):
            raise StackingUnsupported("the network's weights are not of the features' dtype")
        groups = _groups(members, layouts)
        trained = [i for _, indices in groups for i in indices]
        columns = [list(_tensors(lay.linears)) for lay in layouts]
        initial = [torch.stack([c[i].detach() for c in columns]) for i in trained]
        self.parameters = StackedParameters(
            initial,
            [(options, [trained.index(i) for i in indices]) for options, indices in groups],
            optimizer,
        )
        values, grads = [], []
        for i in range(len(columns[0])):
            if i in trained:
                values.append(self.parameters.values[trained.index(i)])
                grads.append(self.parameters.grads[trained.index(i)])
            else:
                values.append(torch.stack([c[i].detach() for c in columns]))
                grads.append(None)
        self.net = Stacked(
            values[0::2], values[1::2], grads[0::2], grads[1::2], first.negative_slope, l1_lambda
        )
        self.dropout, self.augmentation, self.batch_size = first.dropout, augmentation, batch_size
        self.widths = [layer.out_features for layer in first.linears[:-1]]
        n_classes = first.linears[-1].out_features
        self.features = [m.features for m in members]
        self.targets = [F.one_hot(m.labels, n_classes).to(m.features.dtype) for m in members]
        self.validation = [m.validation for m in members]
        self.generators = [m.generator for m in members]
        self.rows = [x.shape[0] for x in self.features]
        self.plan = plan(self.rows, batch_size)
        self.loss_sums = torch.zeros(len(members), dtype=self.features[0].dtype)
        self._alone: dict[int, tuple[Stacked, torch.Tensor]] = {}

    @torch.no_grad()
    def epoch(self) -> list[dict[str, float]]:
        """One epoch of every member: its ``train_loss`` and, with validation rows,
        ``val_loss`` and ``val_accuracy``."""
        x, t, masks = shuffle(
            self.features,
            self.targets,
            self.generators,
            batch_size=self.batch_size,
            steps=len(self.plan),
            widths=self.widths,
            dropout=self.dropout,
            augmentation=self.augmentation,
        )
        self.loss_sums.zero_()
        size, net, sums = self.batch_size, self.net, self.loss_sums
        step_all = self.parameters.step
        # Each step's views made at once (unbind): indexing step by step costs more.
        step_masks = zip(*(m.unbind() for m in masks)) if masks else repeat(())
        for planned, xj, tj, mj in zip(self.plan, x.unbind(), t.unbind(), step_masks):
            if planned.rows == size:
                cross_entropy_step(net, xj, tj, mj, size, sums)
                step_all()
            elif planned.active is None:  # the last batch, as short for every member
                r = slice(None, planned.rows)
                cross_entropy_step(
                    net, xj[:, r], tj[:, r], [m[:, r] for m in mj], planned.rows, sums
                )
                step_all()
            else:
                self._uneven(planned, xj, tj, mj)
        losses = self.loss_sums.tolist()
        records = []
        for k, rows in enumerate(self.rows):
            record = {"train_loss": losses[k] / rows}
            if self.validation[k] is not None:
                record["val_loss"], record["val_accuracy"] = self._evaluate(k)
            records.append(record)
        return records

    def _uneven(self, planned, x, t, masks) -> None:
        """A step where batch sizes differ: member by member, each on its own rows; members
        without a batch sit the optimizer step out."""
        for k in planned.active:
            part, sums = self._member(k)
            at = (slice(k, k + 1), slice(None, planned.each[k]))
            cross_entropy_step(part, x[at], t[at], [m[at] for m in masks], planned.each[k], sums)
        self.parameters.step(planned.active)

    def _member(self, k: int) -> tuple[Stacked, torch.Tensor]:
        """Views of member ``k``'s tensors and loss sum, for steps it runs on its own."""
        if k not in self._alone:
            self._alone[k] = (self.net.members(slice(k, k + 1)), self.loss_sums[k : k + 1])
        return self._alone[k]

    def _evaluate(self, k: int) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of member ``k`` on its validation rows (eval mode)."""
        h, labels = self.validation[k]
        last = len(self.net.weights) - 1
        for layer, (w, b) in enumerate(zip(self.net.weights, self.net.biases)):
            h = F.linear(h, w[k], b[k])
            if layer < last:
                h = F.leaky_relu(h, self.net.negative_slope)
        loss = F.cross_entropy(h, labels).item()
        return loss, (h.argmax(dim=1) == labels).float().mean().item()

    @torch.no_grad()
    def finish(self) -> None:
        """Leaves every member's network as autograd would: its trained weights, the last
        step's gradients in ``.grad`` of the tensors that train, eval mode."""
        net = self.net
        for k, linears in enumerate(self.linears):
            for i, tensor in enumerate(_tensors(linears)):
                layer, is_weight = i // 2, i % 2 == 0
                tensor.copy_((net.weights if is_weight else net.biases)[layer][k])
                grad = (net.weight_grads if is_weight else net.bias_grads)[layer]
                if grad is not None:
                    tensor.grad = grad[k].clone()
        for network in self.networks:
            network.eval()


def _tensors(linears) -> list[torch.Tensor]:
    """Weight, bias, weight, bias, … of the Linear layers: the stack's tensor order."""
    return [t for layer in linears for t in (layer.weight, layer.bias)]


def _groups(members: Sequence[Member], layouts) -> list[tuple[dict[str, Any], list[int]]]:
    """Each member's parameter groups as (options, indices into ``_tensors``): the tensors
    its optimizer trains (``Member.parameters``, by default every parameter that requires a
    gradient) and that require one. Every member must have the same."""
    found = []
    for member, layout in zip(members, layouts, strict=True):
        index = {id(t): i for i, t in enumerate(_tensors(layout.linears))}
        groups = []
        for group in member.parameter_groups():
            options = {key: value for key, value in group.items() if key != "params"}
            indices = []
            for p in group["params"]:
                if id(p) not in index:
                    raise StackingUnsupported("the optimizer's parameters are not the network's")
                if p.requires_grad:
                    indices.append(index[id(p)])
            groups.append((options, indices))
        found.append(groups)
    if any(groups != found[0] for groups in found):
        raise StackingUnsupported("the members' parameter groups differ")
    return found[0]
