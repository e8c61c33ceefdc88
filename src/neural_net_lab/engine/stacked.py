"""The one hand-derived training path: K networks of one architecture as one stacked network.

At batch 16 most of a training step of the phone MLP is per-call overhead (Python, dispatch,
the optimizer's wrapper). Here member k's weights are slice k of ``[K, out, in]`` tensors:
one ``baddbmm`` runs a layer for every member, one hand-derived backward pass fills every
member's gradients and one optimizer call updates them all. The k folds of a
cross-validation are K members (``train_stacked``); a single network is a stack of one
(``stack_of_one``, which ``engine.train`` uses), so the default training, the experiments,
transfer and the tuning refit run the same forward, backward and optimizer step. The
phone MLP's backward formulas are written here and nowhere else in the training code (the
backprop lesson keeps its own float64 demonstration, ``engine.manual_grad``).

Each member computes what it would compute alone with its seed and rows, to the bit on the
development machine's CPU build (benchmarks/cv_speed.py prints the weight difference; the
tests ask for float tolerances, so another BLAS may round apart):

- its own generator draws its epoch permutations, augmentation noise and dropout masks, in
  one fixed order (per epoch the permutation, then per batch the noise and one mask per
  dropout layer; CPU ``torch.rand`` is one serial stream, so an epoch's masks can be drawn
  in one call and cut into the per-batch pieces);
- a batched matrix product computes each slice as the plain ``mm``/``addmm`` does;
- its parameters are separate tensors with their own optimizer state, and the optimizer is
  ``torch.optim``'s own (fused Adam/AdamW/SGD kernels are called directly on those tensors
  after torch's first step created the state, which skips the Python wrapper);
- steps where the members' batches differ in size (the last batch of an epoch when fold
  sizes differ) run member by member on slices, and a member that has run out of batches
  sits the step out, so step counts and bias corrections stay per member.
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn
from torch.nn import functional as F
from tqdm.auto import tqdm

from .augmentation import Augmentation, build_augmentation
from .config import ModelParams, TrainingParams
from .model import mlp_from_params
from .optim import build_optimizer
from .seeding import seed_everything
from .threads import cpu_threads

logger = logging.getLogger(__name__)

# Optimizers whose step couples parameters (LBFGS's line search) or needs sparse gradients.
_NOT_PER_PARAMETER = {"LBFGS", "SparseAdam"}
# Below this many multiply-adds per matrix, CPU bmm/baddbmm switch to a plain loop kernel that
# sums in another order than mm/addmm (measured on torch 2.13): such products go member by
# member. The phone MLP's products are all above it, so this only serves tiny networks.
_BMM_LOOP_KERNEL_BELOW = 400


class StackingUnsupported(ValueError):
    """A setting or network the stacked path does not train; autograd trains it instead."""


@dataclass(frozen=True)
class Member:
    """One network's data: standardized float32 features, int64 labels, and its seed.

    ``val_features`` and ``val_labels`` may both be None: the member then has no
    validation rows and its history holds ``train_loss`` only.
    """

    features: torch.Tensor
    labels: torch.Tensor
    val_features: torch.Tensor | None
    val_labels: torch.Tensor | None
    seed: int
    name: str | None = None


@dataclass
class MemberResult:
    """``history`` as ``engine.train`` returns it; ``state_dict`` loads into ``build_mlp``'s net."""

    history: dict[str, list[float]]
    state_dict: dict[str, torch.Tensor]


def check_stackable(training: TrainingParams) -> None:
    """Raises ``StackingUnsupported`` naming the setting the stacked path cannot train."""
    if training.gradients == "autograd":
        raise StackingUnsupported(
            "training.gradients: 'autograd' is not stacked (the stacked path computes the "
            "hand-derived gradients that 'auto' and 'manual' use)"
        )
    if training.optimizer.name in _NOT_PER_PARAMETER:
        raise StackingUnsupported(
            f"training.optimizer.name: {training.optimizer.name} is not stacked (its step is "
            "not a separate update of each parameter)"
        )


def train_stacked(
    members: Sequence[Member],
    model: ModelParams,
    training: TrainingParams,
    *,
    on_epoch: Callable[[int, float], bool] | None = None,
) -> list[MemberResult]:
    """Trains one network per member, all in one stacked pass; returns each one's result.

    Member k starts from the weights ``build_mlp`` draws right after
    ``seed_everything(seed)``, as a plain training with that seed does.
    ``on_epoch(epoch, mean_val_accuracy)`` (``epoch`` from 0, the mean over the members
    with validation rows of that epoch's validation accuracy, NaN without any) returning
    True stops every member after that epoch. A training loss that turns NaN or infinite
    raises ``FloatingPointError`` naming the member. Unsupported settings raise
    ``StackingUnsupported`` (see ``check_stackable``).
    """
    check_stackable(training)
    names = _check_members(members, model)
    augmentation = build_augmentation(training.augmentation)
    started = time.perf_counter()
    with cpu_threads(training.threads):
        stack = _members_stack(members, model, training)
        histories = [_empty_history(m.val_features is not None) for m in members]
        bar = tqdm(
            range(training.epochs),
            desc=f"{len(members)} stacked networks",
            unit="epoch",
            disable=not training.progress,
            leave=False,
        )
        mean = math.nan
        for epoch in bar:
            records = stack.epoch(augmentation)
            for name, history, record in zip(names, histories, records, strict=True):
                if not math.isfinite(record["train_loss"]):
                    raise FloatingPointError(
                        f"{name}: the training loss is {record['train_loss']} at epoch {epoch}"
                    )
                for key, value in record.items():
                    history[key].append(value)
            scored = [r["val_accuracy"] for r in records if "val_accuracy" in r]
            mean = float(np.mean(scored)) if scored else math.nan
            bar.set_postfix(mean_val_acc=f"{mean:.3f}")
            if on_epoch is not None and on_epoch(epoch, mean):
                break
    logger.info(
        "%d stacked networks: %d epochs in %.1f s, mean validation accuracy %.3f",
        len(members),
        len(histories[0]["train_loss"]),
        time.perf_counter() - started,
        mean,
    )
    return [
        MemberResult(history, state)
        for history, state in zip(histories, stack.state_dicts(), strict=True)
    ]


def stack_of_one(
    model: nn.Module,
    optimizer: torch.optim.Optimizer,
    features: torch.Tensor,
    labels: torch.Tensor,
    *,
    generator: torch.Generator,
    batch_size: int,
    validation: tuple[torch.Tensor, torch.Tensor] | None = None,
    l1_lambda: float = 0.0,
) -> _Stack:
    """``model`` as a stack of one member; each ``epoch(augmentation)`` trains it in place.

    The stack's weights are views of the model's own parameters and ``optimizer`` (any
    parameter groups, with their own learning rates) steps those parameters, so the
    network starts from whatever weights it holds (pretrained ones included) and ends
    trained, with the optimizer's state as torch would have left it. Frozen parameters
    (``requires_grad=False``) get no gradient, and the backward pass stops below the lowest
    layer that trains. Raises ``StackingUnsupported`` for a network that is not an MLP of
    the shape ``build_mlp`` makes, or an optimizer in ``_NOT_PER_PARAMETER``.
    """
    name = type(optimizer).__name__
    if name in _NOT_PER_PARAMETER:
        raise StackingUnsupported(
            f"training.optimizer.name: {name} is not stacked (its step is not a separate "
            "update of each parameter)"
        )
    keys, linears, slope, dropout = _mlp_layout(model)
    if any(layer.weight.dtype != features.dtype for layer in linears):
        raise StackingUnsupported(
            f"the network's weights are not {features.dtype} like the training features"
        )
    stack = _Stack(
        keys,
        [layer.weight.detach().unsqueeze(0) for layer in linears],
        [layer.bias.detach().unsqueeze(0) for layer in linears],
        [(layer.weight.requires_grad, layer.bias.requires_grad) for layer in linears],
        slope=slope,
        dropout=dropout,
        data=[(features, labels, validation)],
        generators=[generator],
        batch_size=batch_size,
        l1_lambda=l1_lambda,
    )
    trainable = []
    for parameter in (p for layer in linears for p in (layer.weight, layer.bias)):
        if parameter.requires_grad:
            trainable.append(parameter)
        else:
            parameter.grad = None  # a frozen parameter must not move, even by a stale gradient
    stack.attach(optimizer, [trainable])
    return stack


def _empty_history(validated: bool) -> dict[str, list[float]]:
    history: dict[str, list[float]] = {"train_loss": []}
    if validated:
        history.update(val_loss=[], val_accuracy=[])
    return history


def _check_members(members: Sequence[Member], model: ModelParams) -> list[str]:
    if not members:
        raise ValueError("train_stacked needs at least one member")
    names = []
    for index, member in enumerate(members):
        name = member.name or f"member {index}"
        names.append(name)
        if (member.val_features is None) != (member.val_labels is None):
            raise ValueError(f"{name}: validation features and labels must both be given or None")
        for part in ("", "val_"):
            x, y = getattr(member, f"{part}features"), getattr(member, f"{part}labels")
            if x is None:
                continue
            rows = "training" if not part else "validation"
            if x.ndim != 2 or x.shape[0] == 0:
                raise ValueError(
                    f"{name}: the {rows} features are empty or not a matrix {tuple(x.shape)}"
                )
            if x.dtype != torch.float32 or y.dtype != torch.int64:
                raise ValueError(
                    f"{name}: {rows} features must be float32 and labels int64, got {x.dtype}, {y.dtype}"
                )
            if x.shape[1] != model.input_dim:
                raise ValueError(
                    f"{name}: the {rows} features have {x.shape[1]} columns but model.input_dim "
                    f"is {model.input_dim}"
                )
            if y.shape != (x.shape[0],):
                raise ValueError(
                    f"{name}: {x.shape[0]} {rows} rows but labels of shape {tuple(y.shape)}"
                )
            if y.min() < 0 or y.max() >= model.n_classes:
                raise ValueError(
                    f"{name}: {rows} labels must lie in [0, {model.n_classes}) "
                    f"(model.n_classes), got {y.min().item()}..{y.max().item()}"
                )
    return names


def _members_stack(
    members: Sequence[Member], model: ModelParams, training: TrainingParams
) -> _Stack:
    """The members' freshly seeded networks, stacked, with one optimizer over their slices."""
    generators, layouts = [], []
    for member in members:
        generators.append(seed_everything(member.seed))
        layouts.append(_mlp_layout(mlp_from_params(model)))
    keys = layouts[0][0]
    stack = _Stack(
        keys,
        [torch.stack([lay[1][i].weight.detach() for lay in layouts]) for i in range(len(keys))],
        [torch.stack([lay[1][i].bias.detach() for lay in layouts]) for i in range(len(keys))],
        [(True, True)] * len(keys),
        slope=model.negative_slope,
        dropout=model.dropout,
        data=[
            (
                m.features,
                m.labels,
                None if m.val_features is None else (m.val_features, m.val_labels),
            )
            for m in members
        ],
        generators=generators,
        batch_size=training.batch_size,
        l1_lambda=training.l1_lambda,
    )
    views = [stack.member_params(k) for k in range(len(members))]
    flat = [p for member_views in views for p in member_views]
    stack.attach(build_optimizer(flat, training.optimizer), views)
    return stack


def _mlp_layout(model: nn.Module) -> tuple[list[str], list[nn.Linear], float, float]:
    """Keys and Linear layers of a ``build_mlp``-shaped network, its slope and dropout p.

    The shape: Linear, then per hidden layer LeakyReLU (or ReLU, slope 0) and an optional
    Dropout, then Linear; one slope and one dropout p throughout, every Linear with a bias.
    """
    layers = list(model.named_children()) if isinstance(model, nn.Sequential) else []
    keys, linears, slopes, drops, i = [], [], set(), set(), 0
    while i < len(layers) and isinstance(layers[i][1], nn.Linear) and layers[i][1].bias is not None:
        keys.append(layers[i][0])
        linears.append(layers[i][1])
        i += 1
        if i == len(layers) or not isinstance(layers[i][1], nn.LeakyReLU | nn.ReLU):
            break
        activation = layers[i][1]
        slopes.add(activation.negative_slope if isinstance(activation, nn.LeakyReLU) else 0.0)
        i += 1
        p = 0.0
        if i < len(layers) and isinstance(layers[i][1], nn.Dropout):
            p = layers[i][1].p
            i += 1
        drops.add(p)
    if not linears or i != len(layers) or len(slopes) > 1 or len(drops) > 1:
        raise StackingUnsupported(
            "the stacked path trains MLPs shaped as build_mlp makes them (Linear with bias, "
            "then LeakyReLU or ReLU and an optional Dropout per hidden layer, one slope and "
            f"one dropout p throughout, Linear last); got {model}"
        )
    return keys, linears, slopes.pop() if slopes else 0.0, drops.pop() if drops else 0.0


class _Stack:
    """The K members' stacked weights, data and optimizer, advanced one epoch at a time."""

    def __init__(
        self,
        keys: list[str],
        weights: list[torch.Tensor],
        biases: list[torch.Tensor],
        trainable: list[tuple[bool, bool]],
        *,
        slope: float,
        dropout: float,
        data: Sequence[tuple[torch.Tensor, torch.Tensor, tuple[torch.Tensor, torch.Tensor] | None]],
        generators: list[torch.Generator],
        batch_size: int,
        l1_lambda: float,
    ):
        self.keys, self.weights, self.biases = keys, weights, biases
        self.trains_weight = [w for w, _ in trainable]
        self.trains_bias = [b for _, b in trainable]
        # The error signal stops at the lowest layer that trains: frozen layers below it
        # need none (a frozen network body costs only its forward pass).
        training_layers = [i for i, (w, b) in enumerate(trainable) if w or b]
        self.lowest = training_layers[0] if training_layers else None
        self.weight_grads = [torch.zeros_like(w) for w in weights]
        self.bias_grads = [torch.zeros_like(b) for b in biases]
        self.slope, self.dropout = slope, dropout
        self.batch_size, self.l1_lambda = batch_size, l1_lambda
        self.generators = generators
        self.widths = [w.shape[1] for w in weights[:-1]]
        self.n_classes = weights[-1].shape[1]
        self.features = [x for x, _, _ in data]
        self.targets = [F.one_hot(y, self.n_classes).to(x.dtype) for x, y, _ in data]
        self.validation = [v for _, _, v in data]
        self.rows = [x.shape[0] for x in self.features]
        self.steps = max(math.ceil(n / batch_size) for n in self.rows)
        self.loss_sums = torch.zeros(len(data), dtype=weights[0].dtype)
        self.plan = self._plan()
        self._groups: dict[object, tuple] = {}
        self.optimizer: _StackedOptimizer | None = None

    def member_params(self, k: int) -> list[torch.Tensor]:
        """Member ``k``'s trainable weights and biases as views of the stacked tensors."""
        return self._trainable(k, self.weights, self.biases)

    def attach(self, optimizer: torch.optim.Optimizer, params: list[list[torch.Tensor]]) -> None:
        """Steps with ``optimizer``, which holds ``params[k]`` for member ``k``: the tensors
        whose storage is member k's slice of the trainable stacked weights, in their order."""
        grads = [self._trainable(k, self.weight_grads, self.bias_grads) for k in range(len(params))]
        self.optimizer = _StackedOptimizer(optimizer, params, grads)

    def _trainable(self, k: int, weights: list, biases: list) -> list[torch.Tensor]:
        pairs = zip(weights, biases, self.trains_weight, self.trains_bias, strict=True)
        return [
            t[k]
            for w, b, trains_w, trains_b in pairs
            for t, trains in ((w, trains_w), (b, trains_b))
            if trains
        ]

    def _group(self, key: slice) -> tuple:
        """Views of weights, transposed weights, biases, gradients and loss sums for ``key``."""
        if key.start not in self._groups:
            w = [t[key] for t in self.weights]
            self._groups[key.start] = (
                w,
                [t.transpose(1, 2) for t in w],
                [t[key].unsqueeze(1) for t in self.biases],
                [t[key] for t in self.weight_grads],
                [t[key] for t in self.bias_grads],
                self.loss_sums[key],
            )
        return self._groups[key.start]

    def _plan(self) -> list[tuple[int, tuple[int, ...] | None, list[int]]]:
        """Per step: the rows every member's batch has (or -1), who steps (None: all), rows."""
        plan = []
        for j in range(self.steps):
            rows = [min(max(n - j * self.batch_size, 0), self.batch_size) for n in self.rows]
            if all(r == rows[0] for r in rows):
                plan.append((rows[0], None, rows))
            else:
                plan.append((-1, tuple(k for k, r in enumerate(rows) if r), rows))
        return plan

    @torch.no_grad()
    def epoch(self, augmentation: Augmentation | None) -> list[dict[str, float]]:
        """One epoch of every member: its ``train_loss`` and, with validation rows,
        ``val_loss`` and ``val_accuracy`` (as ``engine.train``'s history records them)."""
        x, t, masks = self._shuffle(augmentation)
        self.loss_sums.zero_()
        every, size = slice(None), self.batch_size
        for j, (rows, active, each) in enumerate(self.plan):
            if rows == size:
                self._forward_backward(every, x[j], t[j], [m[j] for m in masks], rows)
            elif rows > 0:
                batch = (j, every, slice(None, rows))
                self._forward_backward(every, x[batch], t[batch], [m[batch] for m in masks], rows)
            else:
                # Batches of different sizes: member by member, each on its own rows.
                for k in active:
                    batch = (j, slice(k, k + 1), slice(None, each[k]))
                    self._forward_backward(
                        batch[1], x[batch], t[batch], [m[batch] for m in masks], each[k]
                    )
            self.optimizer.step(active)
        self.optimizer.sync()
        losses = self.loss_sums.tolist()
        records = []
        for k in range(len(self.rows)):
            record = {"train_loss": losses[k] / self.rows[k]}
            if self.validation[k] is not None:
                record["val_loss"], record["val_accuracy"] = self._evaluate(k)
            records.append(record)
        return records

    def _shuffle(self, augmentation) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """This epoch's batches as ``[steps, K, batch, ·]`` tensors, padded past each member's rows.

        Every member draws from its own generator, in this order: the permutation, then per
        batch the augmentation noise and one mask per dropout layer.
        """
        size, steps, K = self.batch_size, self.steps, len(self.rows)
        dtype = self.features[0].dtype
        x = torch.zeros(K, steps * size, self.features[0].shape[1], dtype=dtype)
        t = torch.zeros(K, steps * size, self.n_classes, dtype=dtype)
        draws = [torch.ones(K, steps * size, w) for w in self.widths] if self.dropout else []
        for k, generator in enumerate(self.generators):
            n = self.rows[k]
            order = torch.randperm(n, generator=generator)
            x[k, :n] = self.features[k][order]
            t[k, :n] = self.targets[k][order]
            if augmentation is not None:
                for start in range(0, n, size):
                    end = min(start + size, n)
                    x[k, start:end] = augmentation(x[k, start:end], generator)
                    for d, w in zip(draws, self.widths):
                        d[k, start:end] = torch.rand((end - start, w), generator=generator)
            elif draws:
                self._draw_masks(draws, k, n, generator)
        layout = (K, steps, size)
        x = x.view(*layout, -1).transpose(0, 1).contiguous()
        t = t.view(*layout, -1).transpose(0, 1).contiguous()
        masks = []
        for d in draws:
            keep = (d >= self.dropout).to(dtype).div_(1.0 - self.dropout)
            masks.append(keep.view(*layout, -1).transpose(0, 1).contiguous())
        return x, t, masks

    def _draw_masks(
        self, draws: list[torch.Tensor], k: int, n: int, generator: torch.Generator
    ) -> None:
        # One serial stream: batch 0's masks layer by layer, then batch 1's, and so on.
        size, total = self.batch_size, sum(self.widths)
        stream = torch.rand(n * total, generator=generator)
        full = n // size
        head = stream[: full * size * total].view(full, size * total)
        tail = stream[full * size * total :]
        rest, offset = n - full * size, 0
        for d, w in zip(draws, self.widths):
            d[k, : full * size] = head[:, offset * size : (offset + w) * size].reshape(
                full * size, w
            )
            if rest:
                d[k, full * size : n] = tail[offset * rest : (offset + w) * rest].view(rest, w)
            offset += w

    def _forward_backward(self, key: slice, x, targets, masks, rows: int) -> None:
        """Cross-entropy of the members in ``key``, batched, and its gradients by hand.

        For a batch of B rows, logits z and one-hot targets Y, δ = (softmax(z) − Y) / B;
        per layer ∂W = δᵀa and ∂b = Σ δ, and δW goes to the layer below, through the
        dropout mask and LeakyReLU's derivative (1 where its input was > 0, else the slope).
        """
        weights, transposed, biases, weight_grads, bias_grads, loss_sums = self._group(key)
        last = len(weights) - 1
        saved_inputs, saved_pre = [], []
        h = x
        for layer in range(last + 1):
            saved_inputs.append(h)
            h = _bmm(h, transposed[layer], bias=biases[layer])
            if layer < last:
                saved_pre.append(h)
                h = F.leaky_relu(h, self.slope)
                if masks:
                    h = h * masks[layer]
        log_probs = F.log_softmax(h, dim=2)
        # One reduction per member over its own slice: what a member's loss sums to does
        # not depend on how many members are stacked (checked bitwise for 1 to 10 members).
        loss_sums.sub_((log_probs * targets).sum(dim=(1, 2)))
        if self.lowest is None:
            return  # every layer is frozen
        delta = log_probs.exp_().sub_(targets).div_(rows)
        for layer in range(last, -1, -1):
            if self.trains_weight[layer]:
                _bmm(delta.transpose(1, 2), saved_inputs[layer], out=weight_grads[layer])
            if self.trains_bias[layer]:
                torch.sum(delta, dim=1, out=bias_grads[layer])
            if layer == self.lowest:
                break
            delta = _bmm(delta, weights[layer])
            if masks:
                delta = delta * masks[layer - 1]
            # The fused kernel autograd calls, so the convention at exactly 0 matches too.
            delta = torch.ops.aten.leaky_relu_backward(
                delta, saved_pre[layer - 1], self.slope, False
            )
        if self.l1_lambda:
            for w, g, trains in zip(weights, weight_grads, self.trains_weight, strict=True):
                if trains:
                    # d|w|/dw = sign(w), 0 at 0 like autograd's abs.
                    g.add_(torch.sign(w), alpha=self.l1_lambda)

    def _evaluate(self, k: int) -> tuple[float, float]:
        """Mean cross-entropy and accuracy of member ``k`` on its validation rows (eval mode)."""
        h, labels = self.validation[k]
        last = len(self.weights) - 1
        for layer, (w, b) in enumerate(zip(self.weights, self.biases)):
            h = F.linear(h, w[k], b[k])
            if layer < last:
                h = F.leaky_relu(h, self.slope)
        loss = F.cross_entropy(h, labels).item()
        return loss, (h.argmax(dim=1) == labels).float().mean().item()

    def state_dicts(self) -> list[dict[str, torch.Tensor]]:
        return [
            {
                f"{key}.{part}": tensors[k].clone()
                for key, w, b in zip(self.keys, self.weights, self.biases)
                for part, tensors in (("weight", w), ("bias", b))
            }
            for k in range(len(self.rows))
        ]


def _bmm(a: torch.Tensor, b: torch.Tensor, *, bias=None, out=None) -> torch.Tensor:
    """``bias + a @ b`` per member, summing in the order ``mm``/``addmm`` would."""
    if a.shape[1] * a.shape[2] * b.shape[2] >= _BMM_LOOP_KERNEL_BELOW:
        if bias is None:
            return torch.bmm(a, b, out=out)
        return torch.baddbmm(bias, a, b, out=out)
    if out is None:
        out = a.new_empty(a.shape[0], a.shape[1], b.shape[2])
    for k in range(a.shape[0]):
        if bias is None:
            torch.mm(a[k], b[k], out=out[k])
        else:
            torch.addmm(bias[k, 0], a[k], b[k], out=out[k])
    return out


class _StackedOptimizer:
    """A ``torch.optim`` optimizer over every member's parameters, one call per step.

    ``params[k]`` are the tensors the optimizer holds for member k (views of the stacked
    weights, or a single network's own parameters) and ``grads[k]`` the buffers the
    backward pass fills. Each parameter has its own state, so a member that sits a step out
    keeps its own step count. For fused Adam, AdamW and SGD, steps after the first call the
    fused kernel directly on the state torch created, once per parameter group: the same
    arithmetic without the wrapper's per-parameter Python.
    """

    def __init__(
        self,
        optimizer: torch.optim.Optimizer,
        params: list[list[torch.Tensor]],
        grads: list[list[torch.Tensor]],
    ):
        self.optimizer, self.params, self.grads = optimizer, params, grads
        for member_params, member_grads in zip(params, grads, strict=True):
            for p, g in zip(member_params, member_grads, strict=True):
                p.grad = g
        groups = optimizer.param_groups
        self.group_of = {p: i for i, group in enumerate(groups) for p in group["params"]}
        fused = all(
            g.get("fused") and not g.get("differentiable") and not g.get("capturable")
            for g in groups
        )
        kind = type(optimizer)
        self.kernel = None
        if fused and kind in (torch.optim.Adam, torch.optim.AdamW):
            self.kernel = self._adam
        elif fused and kind is torch.optim.SGD:
            self.kernel = self._sgd
        self._lists: dict[tuple[int, ...] | None, tuple] = {}
        self.step_counts: torch.Tensor | None = None
        self._torch_counts: list[tuple[torch.Tensor, int]] = []

    def step(self, active: tuple[int, ...] | None) -> None:
        """One step of the members in ``active`` (None: all)."""
        lists = self._lists.get(active)
        if lists is None and self.kernel is not None:
            lists = self._state_lists(active)
        if lists is None:
            self._torch_step(active)
        else:
            self.kernel(lists)

    def _torch_step(self, active: tuple[int, ...] | None) -> None:
        idle = [] if active is None else [k for k in range(len(self.params)) if k not in active]
        for k in idle:
            for p in self.params[k]:
                p.grad = None
        self.optimizer.step()
        for k in idle:
            for p, g in zip(self.params[k], self.grads[k]):
                p.grad = g

    def _held(self, members, group: int) -> list[tuple[int, torch.Tensor, torch.Tensor]]:
        """(member, parameter, gradient) of ``members`` in parameter group ``group``."""
        return [
            (k, p, g)
            for k in members
            for p, g in zip(self.params[k], self.grads[k])
            if self.group_of.get(p) == group
        ]

    def _state_lists(self, active: tuple[int, ...] | None) -> tuple | None:
        members = range(len(self.params)) if active is None else active
        state, groups = self.optimizer.state, self.optimizer.param_groups
        held = [self._held(members, i) for i in range(len(groups))]
        if self.kernel == self._sgd:
            lists = []
            for group, entries in zip(groups, held):
                params, buffers = [p for _, p, _ in entries], []
                if group["momentum"] != 0:
                    if not all("momentum_buffer" in state[p] for p in params):
                        return None  # torch's own step creates the momentum buffers first
                    buffers = [state[p]["momentum_buffer"] for p in params]
                lists.append((params, [g for _, _, g in entries], buffers, group))
            self._lists[active] = (lists,)
            return self._lists[active]
        if self.step_counts is None and not self._count_steps_per_member():
            return None
        increment = torch.zeros_like(self.step_counts)
        increment[list(members)] = 1
        lists = []
        for group, entries in zip(groups, held):
            params = [p for _, p, _ in entries]
            lists.append(
                (
                    params,
                    [g for _, _, g in entries],
                    [state[p]["exp_avg"] for p in params],
                    [state[p]["exp_avg_sq"] for p in params],
                    [state[p]["max_exp_avg_sq"] for p in params] if group["amsgrad"] else [],
                    [self.step_counts[k] for k, _, _ in entries],
                    group,
                )
            )
        self._lists[active] = (lists, self.step_counts, increment)
        return self._lists[active]

    def _count_steps_per_member(self) -> bool:
        """One step counter per member instead of torch's one per parameter tensor.

        A member's tensors always step together, and one ``add_`` is far cheaper than
        ``_foreach_add_`` over 0-d tensors on the CPU (~80 µs for 30 of them). ``sync``
        copies the counters back into torch's. False until torch's first step has created
        the state.
        """
        state = self.optimizer.state
        held = [[p for p in ps if p in self.group_of] for ps in self.params]
        if not all(p in state for ps in held for p in ps):
            return False
        self.step_counts = torch.stack(
            [state[ps[0]]["step"].clone() if ps else torch.zeros(()) for ps in held]
        )
        self._torch_counts = [(state[p]["step"], k) for k, ps in enumerate(held) for p in ps]
        return True

    def sync(self) -> None:
        """Leaves torch's per-parameter step counts as its own steps would have (after each
        epoch, so that a caller can go on with the optimizer alone)."""
        if self.step_counts is not None:
            for count, k in self._torch_counts:
                count.copy_(self.step_counts[k])

    @staticmethod
    def _adam(lists: tuple) -> None:
        per_group, counts, increment = lists
        # What torch.optim.adam._fused_adam does for CPU tensors with a float lr.
        counts.add_(increment)
        for params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, group in per_group:
            if not params:
                continue
            kernel = torch._fused_adamw_ if group["decoupled_weight_decay"] else torch._fused_adam_
            beta1, beta2 = group["betas"]
            kernel(
                params,
                grads,
                exp_avgs,
                exp_avg_sqs,
                max_exp_avg_sqs,
                steps,
                amsgrad=group["amsgrad"],
                lr=float(group["lr"]),
                beta1=float(beta1),
                beta2=float(beta2),
                weight_decay=group["weight_decay"],
                eps=group["eps"],
                maximize=group["maximize"],
                grad_scale=None,
                found_inf=None,
            )

    @staticmethod
    def _sgd(lists: tuple) -> None:
        # What torch.optim.sgd._fused_sgd does after the first step created the buffers.
        for params, grads, buffers, group in lists[0]:
            if not params:
                continue
            torch._fused_sgd_(
                params,
                grads,
                buffers,
                weight_decay=group["weight_decay"],
                momentum=group["momentum"],
                lr=group["lr"],
                dampening=group["dampening"],
                nesterov=group["nesterov"],
                maximize=group["maximize"],
                is_first_step=False,
                grad_scale=None,
                found_inf=None,
            )
