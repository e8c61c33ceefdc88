"""Train K networks of one architecture together, as one stacked network.

At batch 16 about two thirds of a training step of the phone MLP is per-call overhead
(Python, dispatch, the optimizer's wrapper), so the k folds of a cross-validation pay it k
times when trained one after another. Here member k's weights are slice k of ``[K, out,
in]`` tensors: one ``baddbmm`` runs a layer for every member, one hand-derived backward pass
fills every member's gradients and one optimizer call updates them all.

Each member still computes what ``engine.train`` computes alone with its seed and rows, to
the bit on the development machine's CPU build (benchmarks/cv_speed.py prints the weight
difference; the tests ask for the issue's tolerances, so another BLAS may round apart):

- its initial weights are what ``build_mlp`` draws right after ``seed_everything(seed)``;
- its own generator draws its epoch permutations, augmentation noise and dropout masks, in
  the order the single path draws them (CPU ``torch.rand`` is one serial stream, so an
  epoch's masks can be drawn in one call and cut into the per-batch pieces);
- a batched matrix product computes each slice as the plain ``mm``/``addmm`` does;
- its parameters are separate views with their own optimizer state, and the optimizer is
  ``torch.optim``'s own (fused Adam/AdamW/SGD kernels are called directly on those views
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

from .augmentation import build_augmentation
from .config import ModelParams, TrainingParams
from .model import build_mlp
from .optim import build_optimizer
from .seeding import seed_everything
from .training import cpu_threads

logger = logging.getLogger(__name__)

# Optimizers whose step couples parameters (LBFGS's line search) or needs sparse gradients.
_NOT_PER_PARAMETER = {"LBFGS", "SparseAdam"}
# Below this many multiply-adds per matrix, CPU bmm/baddbmm switch to a plain loop kernel that
# sums in another order than mm/addmm (measured on torch 2.13): such products go member by
# member. The phone MLP's products are all above it, so this only serves tiny networks.
_BMM_LOOP_KERNEL_BELOW = 400


class StackingUnsupported(ValueError):
    """A setting the stacked path does not train; train the members one after another."""


@dataclass(frozen=True)
class Member:
    """One network's data: standardized float32 features, int64 labels, and its seed."""

    features: torch.Tensor
    labels: torch.Tensor
    val_features: torch.Tensor
    val_labels: torch.Tensor
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

    ``on_epoch(epoch, mean_val_accuracy)`` (``epoch`` from 0, the mean over members of that
    epoch's validation accuracy) returning True stops every member after that epoch. A
    training loss that turns NaN or infinite raises ``FloatingPointError`` naming the member.
    Unsupported settings raise ``StackingUnsupported`` (see ``check_stackable``).
    """
    check_stackable(training)
    names = _check_members(members, model)
    augmentation = build_augmentation(
        training.augmentation.model_dump() if training.augmentation else None
    )
    started = time.perf_counter()
    with torch.no_grad(), cpu_threads(training.threads):
        stack = _Stack(members, model, training)
        histories: list[dict[str, list[float]]] = [
            {"train_loss": [], "val_loss": [], "val_accuracy": []} for _ in members
        ]
        bar = tqdm(
            range(training.epochs),
            desc=f"{len(members)} stacked networks",
            unit="epoch",
            disable=not training.progress,
            leave=False,
        )
        for epoch in bar:
            records = stack.epoch(augmentation)
            for name, history, record in zip(names, histories, records, strict=True):
                if not math.isfinite(record["train_loss"]):
                    raise FloatingPointError(
                        f"{name}: the training loss is {record['train_loss']} at epoch {epoch}"
                    )
                for key, value in record.items():
                    history[key].append(value)
            mean = float(np.mean([r["val_accuracy"] for r in records]))
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


def _check_members(members: Sequence[Member], model: ModelParams) -> list[str]:
    if not members:
        raise ValueError("train_stacked needs at least one member")
    names = []
    for index, member in enumerate(members):
        name = member.name or f"member {index}"
        names.append(name)
        for part in ("", "val_"):
            x, y = getattr(member, f"{part}features"), getattr(member, f"{part}labels")
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


class _Stack:
    """The K members' stacked weights, data and optimizer, advanced one epoch at a time."""

    def __init__(self, members: Sequence[Member], model: ModelParams, training: TrainingParams):
        self.batch_size = training.batch_size
        self.l1_lambda = training.l1_lambda
        self.dropout = model.dropout
        self.slope = model.negative_slope
        self.generators, nets = [], []
        for member in members:
            self.generators.append(seed_everything(member.seed))
            nets.append(
                build_mlp(
                    model.input_dim,
                    model.hidden_dims,
                    model.n_classes,
                    negative_slope=model.negative_slope,
                    dropout=model.dropout,
                )
            )
        self.keys = [str(i) for i, layer in enumerate(nets[0]) if isinstance(layer, nn.Linear)]
        linears = [[net[int(key)] for key in self.keys] for net in nets]
        self.weights = [
            torch.stack([n[layer].weight.detach() for n in linears])
            for layer in range(len(self.keys))
        ]
        self.biases = [
            torch.stack([n[layer].bias.detach() for n in linears])
            for layer in range(len(self.keys))
        ]
        self.weight_grads = [torch.zeros_like(w) for w in self.weights]
        self.bias_grads = [torch.zeros_like(b) for b in self.biases]
        self.widths = list(model.hidden_dims)
        self.n_classes = model.n_classes

        self.rows = [m.features.shape[0] for m in members]
        self.features = [m.features for m in members]
        self.targets = [F.one_hot(m.labels, model.n_classes).to(torch.float32) for m in members]
        self.validation = [(m.val_features, m.val_labels) for m in members]
        self.steps = max(math.ceil(n / self.batch_size) for n in self.rows)
        self.loss_sums = torch.zeros(len(members))
        self.plan = self._plan()
        self._groups: dict[object, tuple] = {}
        self.optimizer = _StackedOptimizer(
            [self._member_params(k) for k in range(len(members))],
            [self._member_grads(k) for k in range(len(members))],
            {"name": training.optimizer.name, **training.optimizer.settings()},
        )

    def _member_params(self, k: int) -> list[torch.Tensor]:
        return [t[k] for pair in zip(self.weights, self.biases) for t in pair]

    def _member_grads(self, k: int) -> list[torch.Tensor]:
        return [t[k] for pair in zip(self.weight_grads, self.bias_grads) for t in pair]

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

    def epoch(self, augmentation) -> list[dict[str, float]]:
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
        losses = self.loss_sums.tolist()
        records = []
        for k in range(len(self.rows)):
            val_loss, val_accuracy = self._evaluate(k)
            records.append(
                {
                    "train_loss": losses[k] / self.rows[k],
                    "val_loss": val_loss,
                    "val_accuracy": val_accuracy,
                }
            )
        return records

    def _shuffle(self, augmentation) -> tuple[torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """This epoch's batches as ``[steps, K, batch, ·]`` tensors, padded past each member's rows.

        Every member draws from its own generator exactly what ``train`` draws: the
        permutation, then per batch the augmentation noise and one mask per dropout layer.
        """
        size, steps, K = self.batch_size, self.steps, len(self.rows)
        x = torch.zeros(K, steps * size, self.features[0].shape[1])
        t = torch.zeros(K, steps * size, self.n_classes)
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
            keep = (d >= self.dropout).to(torch.float32).div_(1.0 - self.dropout)
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
        """``ManualMLPGradient.loss_and_gradients`` on the members in ``key``, batched."""
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
        # vdot per member, as the single path sums its batch loss (a batched sum would round
        # differently).
        members = h.shape[0]
        pairs = zip(log_probs.view(members, -1).unbind(), targets.reshape(members, -1).unbind())
        loss_sums.sub_(torch.stack([torch.vdot(p, y) for p, y in pairs]))
        delta = log_probs.exp_().sub_(targets).div_(rows)
        for layer in range(last, -1, -1):
            _bmm(delta.transpose(1, 2), saved_inputs[layer], out=weight_grads[layer])
            torch.sum(delta, dim=1, out=bias_grads[layer])
            if layer == 0:
                break
            delta = _bmm(delta, weights[layer])
            if masks:
                delta = delta * masks[layer - 1]
            delta = torch.ops.aten.leaky_relu_backward(
                delta, saved_pre[layer - 1], self.slope, False
            )
        if self.l1_lambda:
            for w, g in zip(weights, weight_grads):
                g.add_(torch.sign(w), alpha=self.l1_lambda)

    def _evaluate(self, k: int) -> tuple[float, float]:
        """``training.evaluate`` on member ``k``'s validation rows."""
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
    """``torch.optim``'s optimizer over every member's parameter views, one call per step.

    Each view has its own state, so a member that sits a step out keeps its own step count.
    For fused Adam, AdamW and SGD, steps after the first call the fused kernel directly on
    the state torch created: the same arithmetic without the wrapper's per-parameter Python.
    """

    def __init__(
        self, params: list[list[torch.Tensor]], grads: list[list[torch.Tensor]], config: dict
    ):
        self.params, self.grads = params, grads
        for member_params, member_grads in zip(params, grads):
            for p, g in zip(member_params, member_grads):
                p.grad = g
        flat = [p for member_params in params for p in member_params]
        self.optimizer = build_optimizer(flat, config, "training.optimizer")
        group = self.optimizer.param_groups[0]
        fused = (
            group.get("fused") and not group.get("differentiable") and not group.get("capturable")
        )
        kind = type(self.optimizer)
        self.kernel = None
        if fused and kind in (torch.optim.Adam, torch.optim.AdamW):
            self.kernel = self._adam
        elif fused and kind is torch.optim.SGD:
            self.kernel = self._sgd
        self._lists: dict[tuple[int, ...] | None, tuple] = {}
        self.step_counts: torch.Tensor | None = None

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

    def _state_lists(self, active: tuple[int, ...] | None) -> tuple | None:
        members = range(len(self.params)) if active is None else active
        params = [p for k in members for p in self.params[k]]
        state = self.optimizer.state
        group = self.optimizer.param_groups[0]
        stateless = self.kernel == self._sgd and group["momentum"] == 0
        if not stateless and not all(p in state for p in params):
            return None  # torch's own step creates the state first
        grads = [g for k in members for g in self.grads[k]]
        if self.kernel == self._adam:
            if self.step_counts is None:
                # One counter per member instead of torch's one per parameter tensor: a
                # member's tensors always step together, and one add_ is far cheaper than
                # _foreach_add_ over 0-d tensors on the CPU (~80 µs for 30 of them).
                if any(p not in state for ps in self.params for p in ps):
                    return None
                self.step_counts = torch.stack([state[ps[0]]["step"] for ps in self.params])
            counts = [self.step_counts[k] for k in members for _ in self.params[k]]
            increment = torch.zeros_like(self.step_counts)
            increment[list(members)] = 1
            lists = (
                params,
                grads,
                [state[p]["exp_avg"] for p in params],
                [state[p]["exp_avg_sq"] for p in params],
                [state[p]["max_exp_avg_sq"] for p in params] if group["amsgrad"] else [],
                counts,
                (self.step_counts, increment),
                group,
            )
        elif group["momentum"] != 0:
            lists = (params, grads, [state[p]["momentum_buffer"] for p in params], group)
        else:
            lists = (params, grads, [], group)
        self._lists[active] = lists
        return lists

    @staticmethod
    def _adam(lists: tuple) -> None:
        params, grads, exp_avgs, exp_avg_sqs, max_exp_avg_sqs, steps, counting, group = lists
        # What torch.optim.adam._fused_adam does for CPU tensors with a float lr.
        counts, increment = counting
        counts.add_(increment)
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
        params, grads, buffers, group = lists
        # What torch.optim.sgd._fused_sgd does after the first step created the buffers.
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
