"""Optimizers, in one room: the ``torch.optim`` class a block names, its settings checked
against torch, the optimizer built, which optimizers a stack can share (a rule checked in
code), and how one optimizer steps every member of a stack: each member's tensors as views
into one flat row (``StackedParameters``), Adam through its public function (``AdamSteps``),
since at batch 16 the step's fixed costs are a large part of a training step.
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Iterable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import optim
from torch.optim.adam import adam

from .errors import setting_error

if TYPE_CHECKING:
    from .config import OptimizerParams

# Fused CPU kernels run a tensor's elements through SIMD lanes (16 float32 with AVX-512) and
# its last numel % 16 elements through a scalar tail, which rounds differently (measured: a
# last-bit difference). A tensor whose size is a multiple of 16, at an offset that is one,
# meets the same lanes in a flat row as alone, and so does one other tensor at the row's end;
# any further tensors stay tensors of their own.
_LANES = 16


@functools.cache
def _known() -> dict[str, type[optim.Optimizer]]:
    return {
        name: obj
        for name, obj in vars(optim).items()
        if inspect.isclass(obj) and issubclass(obj, optim.Optimizer) and obj is not optim.Optimizer
    }


def optimizer_class(name: str) -> type[optim.Optimizer]:
    """``torch.optim.<name>``; an unknown name is a ValueError that lists the known ones."""
    if name not in _known():
        raise ValueError(f"unknown optimizer {name!r}; choose one of {sorted(_known())}")
    return _known()[name]


def check_settings(name: str, settings: Mapping[str, Any]) -> None:
    """Checks an optimizer block against torch: its name, each setting's name, and what the
    constructor itself refuses (tried once on a dummy tensor). Raises a validation error
    located at the bad setting, for ``OptimizerParams``."""
    try:
        cls = optimizer_class(name)
    except ValueError as error:
        raise setting_error("OptimizerParams", ("name",), str(error), name) from None
    accepted = set(inspect.signature(cls.__init__).parameters) - {"self", "params"}
    for key, value in settings.items():
        if key not in accepted:
            rule = f"{name} has no setting {key!r}; it takes {sorted(accepted)}"
            raise setting_error("OptimizerParams", (key,), rule, value)
    try:
        cls([torch.zeros(1, requires_grad=True)], **settings)
    except (TypeError, ValueError, RuntimeError) as error:
        rule = f"{name} refused its settings: {error}"
        raise setting_error("OptimizerParams", (), rule, dict(settings)) from None


def build_optimizer(
    params: Iterable[torch.Tensor] | Iterable[dict[str, Any]],
    config: OptimizerParams,
) -> torch.optim.Optimizer:
    """Builds ``torch.optim.<name>(params, **settings)`` from an optimizer block.

    ``params`` may be parameter groups (dicts with their own ``lr``). Where the class has a
    fused implementation and the config does not choose, the fused one is used: on the CPU it
    updates every tensor in one kernel instead of a Python loop, with the same arithmetic.
    """
    cls = optimizer_class(config.name)
    settings = config.settings()
    if "fused" in inspect.signature(cls.__init__).parameters:
        settings.setdefault("fused", True)
    return cls(params, **settings)


def stacking_refusal(config: OptimizerParams) -> str | None:
    """Why one optimizer cannot step a stack's members together (None: it can).

    A stack hands the optimizer each member's parameters as one flat tensor and skips a
    member that sits a step out by leaving its gradient None. That is the members' own
    training only if the step updates each element from that element's gradient and state
    alone: true of SGD, Adam, RMSprop and most of ``torch.optim``, not of LBFGS (a line
    search over all parameters, through a closure), SparseAdam (sparse gradients only) or a
    factored optimizer (Adafactor keeps statistics per row and column). The rule is checked,
    not listed: with these settings the optimizer steps a matrix and a vector, and their
    flat concatenation, with the same gradients; both must agree (to float rounding), and a
    tensor whose gradient is None must stay as it is.
    """
    key = (config.name, repr(sorted(config.settings().items())))
    if key not in _REFUSALS:
        _REFUSALS[key] = _refusal(config)
    return _REFUSALS[key]


_REFUSALS: dict[tuple[str, str], str | None] = {}


def _refusal(config: OptimizerParams) -> str | None:
    name = config.name
    generator = torch.Generator().manual_seed(0)
    pieces = [torch.randn(3, 5, generator=generator), torch.randn(7, generator=generator)]
    flat = torch.cat([p.reshape(-1) for p in pieces])
    try:
        alone, together = build_optimizer(pieces, config), build_optimizer([flat], config)
        for _ in range(3):
            flat.grad = torch.randn(flat.shape, generator=generator)
            for piece, grad in zip(pieces, flat.grad.split([15, 7]), strict=True):
                piece.grad = grad.view_as(piece).clone()
            alone.step()
            together.step()
        agree = torch.allclose(
            torch.cat([p.reshape(-1) for p in pieces]), flat, rtol=1e-5, atol=1e-6, equal_nan=True
        )
        sitting_out = pieces[1].clone()
        pieces[1].grad = None
        alone.step()
    except (TypeError, ValueError, RuntimeError, NotImplementedError) as error:
        return f"training.optimizer.name: {name} cannot step tensors on their own ({error})"
    if not agree:
        return (
            f"training.optimizer.name: {name} is not stacked (its step of a tensor depends on "
            "the tensor's shape, not only on each element's own gradient)"
        )
    if not torch.equal(pieces[1], sitting_out):
        return f"training.optimizer.name: {name} moves a parameter that has no gradient"
    return None


class StackedParameters:
    """K members' trainable tensors, each ``[K, *shape]``, and one optimizer stepping them.

    ``initial[i]`` holds tensor i of every member (member k's at index k), ``groups`` the
    parameter groups as (options such as ``lr``, indices into ``initial``), the same for
    every member; ``values[i]`` and ``grads[i]`` are what the formulas read and fill. Within
    a group, a member's tensors whose size is a multiple of ``_LANES``, and one other last,
    are views into one flat row that the optimizer holds; further tensors it holds alone.
    Each member has its own optimizer state and sits a step out when it is not ``active``.
    """

    def __init__(
        self,
        initial: Sequence[torch.Tensor],
        groups: Sequence[tuple[Mapping[str, Any], Sequence[int]]],
        config: OptimizerParams,
    ):
        members = initial[0].shape[0]
        self.values: list[torch.Tensor] = list(initial)
        self.grads: list[torch.Tensor] = [torch.zeros_like(t) for t in initial]
        held: list[list[tuple[torch.Tensor, torch.Tensor]]] = [[] for _ in range(members)]
        param_groups = []
        for options, indices in groups:
            in_row = [i for i in indices if initial[i][0].numel() % _LANES == 0]
            alone = [i for i in indices if i not in in_row]
            if alone:
                in_row.append(alone.pop())  # at the row's end its tail is the row's tail
            tensors = [self._flat_row(initial, in_row)] if in_row else []
            tensors += [(self.values[i], self.grads[i]) for i in alone]
            params = []
            for k in range(members):
                pairs = [(t[k], g[k]) for t, g in tensors]
                for p, g in pairs:
                    p.grad = g
                held[k] += pairs
                params += [p for p, _ in pairs]
            if params:
                param_groups.append({**options, "params": params})
        self.held = held
        # Every tensor frozen: nothing to step (the stack still computes the losses).
        self.optimizer = build_optimizer(param_groups, config) if param_groups else None
        adam_only = type(self.optimizer) is optim.Adam
        self.adam_steps = AdamSteps(self.optimizer, members) if adam_only else None

    def _flat_row(
        self, initial: Sequence[torch.Tensor], indices: list[int]
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """One ``[K, total]`` value and gradient buffer for ``indices``, whose tensors
        become views into it."""
        total = sum(initial[i][0].numel() for i in indices)
        flat = initial[0].new_empty(initial[0].shape[0], total)
        flat_grad = torch.zeros_like(flat)
        offset = 0
        for i in indices:
            size, shape = initial[i][0].numel(), initial[i].shape
            self.values[i] = flat[:, offset : offset + size].view(shape)
            self.values[i].copy_(initial[i])
            self.grads[i] = flat_grad[:, offset : offset + size].view(shape)
            offset += size
        return flat, flat_grad

    def step(self, active: Sequence[int] | None = None) -> None:
        """One optimizer step for the members in ``active`` (None: all)."""
        if self.optimizer is None:
            return
        if self.adam_steps is not None:
            self.adam_steps.step(active)
            return
        if active is None:
            self.optimizer.step()
            return
        idle = [pair for k, pairs in enumerate(self.held) if k not in active for pair in pairs]
        for p, _ in idle:
            p.grad = None
        self.optimizer.step()
        for p, g in idle:
            p.grad = g


class AdamSteps:
    """Adam's step for a stack through ``torch.optim.adam.adam``, the public function (in its
    module's ``__all__``) that ``Adam.step()`` calls, on the optimizer's own groups: the same
    kernel, the same numbers, without ``step()``'s profiling context, hooks and regrouping
    (about 40 µs of a 170 µs step at batch 16). The moments and step counts are kept here; a
    member that sits a step out is left out of the call. Every group setting the function
    takes is passed by name, so one only some torch versions have follows the installed one.
    """

    _TAKES = frozenset(inspect.signature(adam).parameters)

    def __init__(self, optimizer: optim.Adam, members: int):
        self.members = members
        self.groups = []
        for group in optimizer.param_groups:
            params = group["params"]
            state = {
                "params": params,
                "grads": [p.grad for p in params],
                "exp_avgs": [torch.zeros_like(p) for p in params],
                "exp_avg_sqs": [torch.zeros_like(p) for p in params],
                "max_exp_avg_sqs": [torch.zeros_like(p) for p in params]
                if group["amsgrad"]
                else [],
                # float32: the step count Adam keeps for a fused or a float32 step
                "state_steps": [torch.zeros((), dtype=torch.float32) for _ in params],
            }
            self.groups.append((group, state))

    def step(self, active: Sequence[int] | None = None) -> None:
        for group, every in self.groups:
            state = every
            if active is not None:  # a group holds n tensors of each member, member by member
                n = len(every["params"]) // self.members
                state = {
                    key: [t for k in active for t in ts[k * n : (k + 1) * n]]
                    for key, ts in every.items()
                }
            settings = {k: v for k, v in group.items() if k in self._TAKES and k != "params"}
            settings["beta1"], settings["beta2"] = group["betas"]
            adam(**state, **settings)
