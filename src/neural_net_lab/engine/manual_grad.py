"""The hand-derived forward and backward pass of the MLP with cross-entropy: the backprop
lesson's formulas, and the ones every hand-derived training runs.

For a batch of B rows, logits z⁽ᴸ⁾ and one-hot targets Y, the mean cross-entropy gives
δ⁽ᴸ⁾ = (softmax(z⁽ᴸ⁾) − Y) / B. Going back through each layer l:
∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾ᵀ a⁽ˡ⁻¹⁾ and ∂L/∂b⁽ˡ⁾ = Σ_rows δ⁽ˡ⁾ (PyTorch's [out, in] layout), the error
reaching the layer below is δ⁽ˡ⁾ W⁽ˡ⁾, dropout multiplies it by its mask and LeakyReLU by
its derivative: 1 where its input was positive, the slope elsewhere (at exactly 0 too, as
autograd does).

``cross_entropy_step`` computes this for K networks of one architecture at once (a stack:
member k's weights are slice k of ``[K, out, in]`` tensors, its batch slice k of
``[K, B, in]``); one network is a stack of one. ``ManualMLPGradient`` is the lesson's view of
it: one ``nn.Sequential``, its gradients written into ``.grad`` (``kedro run --pipelines
backprop`` checks them in float64 against autograd and finite differences).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import torch
from torch import nn
from torch.nn import functional as F

from .model import mlp_layout

# Below this many multiply-adds per matrix, CPU bmm/baddbmm switch to a plain loop kernel that
# sums in another order than mm/addmm (measured on torch 2.13): such products go member by
# member. The phone MLP's products are all above it, so this only serves tiny networks.
_BMM_LOOP_KERNEL_BELOW = 400


@dataclass
class Stacked:
    """K networks' tensors as the formulas read and write them.

    ``weights[l]`` is ``[K, out, in]``, ``biases[l]`` ``[K, out]``; ``weight_grads[l]`` and
    ``bias_grads[l]`` receive the gradients (None where that tensor is frozen: it gets none,
    and the error signal stops below the lowest layer that trains).
    """

    weights: Sequence[torch.Tensor]
    biases: Sequence[torch.Tensor]
    weight_grads: Sequence[torch.Tensor | None]
    bias_grads: Sequence[torch.Tensor | None]
    negative_slope: float
    l1_lambda: float = 0.0

    def __post_init__(self) -> None:
        trained = [
            layer
            for layer, grads in enumerate(zip(self.weight_grads, self.bias_grads, strict=True))
            if any(g is not None for g in grads)
        ]
        self.lowest = trained[0] if trained else None
        self.transposed = [w.transpose(1, 2) for w in self.weights]
        self.row_biases = [b.unsqueeze(1) for b in self.biases]
        self._scratch: dict[int, _Scratch] = {}

    def members(self, key: slice) -> Stacked:
        """The same tensors for the members in ``key`` (views, so the formulas fill the
        stack's own gradient buffers)."""

        def part(tensors):
            return [None if t is None else t[key] for t in tensors]

        return Stacked(
            part(self.weights),
            part(self.biases),
            part(self.weight_grads),
            part(self.bias_grads),
            self.negative_slope,
            self.l1_lambda,
        )

    def scratch(self, rows: int) -> _Scratch:
        """Buffers for batches of ``rows`` rows, reused step after step: at batch 16 a new
        tensor per intermediate result costs about as much as computing it."""
        if rows not in self._scratch:
            self._scratch[rows] = _Scratch(self, rows)
        return self._scratch[rows]


class _Scratch:
    """Per layer: its output (the pre-activation, then in place the activation), the
    activation's derivative, and the error sent to the layer below; and the products."""

    def __init__(self, net: Stacked, rows: int):
        weights = net.weights
        members, dtype = weights[0].shape[0], weights[0].dtype

        def empty(width: int) -> torch.Tensor:
            return torch.empty(members, rows, width, dtype=dtype)

        self.outputs = [empty(w.shape[1]) for w in weights]
        self.derivatives = [empty(w.shape[1]) for w in weights[:-1]]
        self.errors = [empty(w.shape[2]) for w in weights]
        self.likelihood = empty(weights[-1].shape[1])
        exact = all(rows * w.shape[1] * w.shape[2] >= _BMM_LOOP_KERNEL_BELOW for w in weights)
        self.products = (torch.baddbmm, torch.bmm) if exact else (_member_baddbmm, _member_bmm)


def cross_entropy_step(
    net: Stacked,
    x: torch.Tensor,
    targets: torch.Tensor,
    masks: Sequence[torch.Tensor],
    rows: int,
    loss_sums: torch.Tensor,
) -> None:
    """One batch of every member: ``x`` ``[K, rows, in]``, one-hot ``targets``, the dropout
    ``masks`` per hidden layer (already scaled by 1/(1−p); none without dropout).

    Subtracts each member's summed log-likelihood from ``loss_sums[k]`` (so it adds up the
    summed cross-entropy) and writes the gradients of the mean cross-entropy, plus
    λ·sign(W) for ``l1_lambda``, into the gradient buffers (overwritten, not accumulated).
    """
    # Straight-line code on purpose: at batch 16 each Python statement here costs about as
    # much as the arithmetic it starts.
    scratch = net.scratch(rows)
    baddbmm, bmm = scratch.products
    outputs, derivatives = scratch.outputs, scratch.derivatives
    slope, lowest, last = net.negative_slope, net.lowest, len(net.weights) - 1
    h = x
    for layer, (transposed, bias) in enumerate(zip(net.transposed, net.row_biases)):
        h = baddbmm(bias, h, transposed, out=outputs[layer])
        if layer == last:
            break
        if lowest is not None and layer >= lowest:
            # LeakyReLU's derivative: sign(z) is 1 exactly where z > 0, and every other
            # value becomes the slope; a product with it rounds as autograd's kernel does.
            F.threshold_(torch.sign(h, out=derivatives[layer]), 0.0, slope)
        F.leaky_relu_(h, slope)
        if masks:
            h.mul_(masks[layer])
    log_probs = F.log_softmax(h, dim=2)
    # One reduction per member over its own slice: what a member's loss sums to does not
    # depend on how many members are stacked (checked bitwise for 1 to 10 members).
    loss_sums.sub_(torch.mul(log_probs, targets, out=scratch.likelihood).sum(dim=(1, 2)))
    if lowest is None:
        return  # every layer is frozen
    delta = log_probs.exp_().sub_(targets).div_(rows)
    for layer in range(last, lowest - 1, -1):
        below = outputs[layer - 1] if layer else x  # this layer's input
        if net.weight_grads[layer] is not None:
            bmm(delta.transpose(1, 2), below, out=net.weight_grads[layer])
        if net.bias_grads[layer] is not None:
            torch.sum(delta, dim=1, out=net.bias_grads[layer])
        if layer == lowest:
            break
        delta = bmm(delta, net.weights[layer], out=scratch.errors[layer])
        if masks:
            delta.mul_(masks[layer - 1])
        delta.mul_(derivatives[layer - 1])
    if net.l1_lambda:
        _add_l1(net)


def _add_l1(net: Stacked) -> None:
    """λ·d|w|/dw = λ·sign(w) (0 at 0, like autograd's abs) into the trained weights' grads."""
    for w, g in zip(net.weights, net.weight_grads, strict=True):
        if g is not None:
            g.add_(torch.sign(w), alpha=net.l1_lambda)


# Products member by member, for matrices so small that CPU bmm/baddbmm switch to a loop
# kernel summing in another order than mm/addmm.
def _member_baddbmm(bias, a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor) -> torch.Tensor:
    for k in range(a.shape[0]):
        torch.addmm(bias[k, 0], a[k], b[k], out=out[k])
    return out


def _member_bmm(a: torch.Tensor, b: torch.Tensor, *, out: torch.Tensor) -> torch.Tensor:
    for k in range(a.shape[0]):
        torch.mm(a[k], b[k], out=out[k])
    return out


class ManualMLPGradient:
    """The lesson's view of the formulas: one network shaped as ``build_mlp`` makes it,
    its gradients written into ``.grad``."""

    def __init__(self, model: nn.Module):
        self.layout = mlp_layout(model)

    def loss_and_gradients(
        self,
        features: torch.Tensor,
        targets_one_hot: torch.Tensor,
        generator: torch.Generator | None = None,
        training: bool = True,
    ) -> torch.Tensor:
        """Summed cross-entropy of the batch's rows; writes ∂(mean loss)/∂θ into ``.grad``.

        Gradients of trainable parameters are overwritten, not accumulated, so no
        ``zero_grad`` is needed between steps. The loss comes back as a sum (a 0-d tensor,
        not a float) so that a caller can add batches up without waiting on each one.
        With ``training`` and dropout, the masks are drawn from ``generator``, layer by layer.
        """
        linears, p = self.layout.linears, self.layout.dropout
        masks = []
        if training and p > 0:
            for layer in linears[:-1]:
                keep = torch.rand((features.shape[0], layer.out_features), generator=generator)
                masks.append((keep >= p).to(features.dtype).div_(1.0 - p).unsqueeze(0))
        grads = {
            id(t): torch.empty_like(t).unsqueeze(0) if t.requires_grad else None
            for layer in linears
            for t in (layer.weight, layer.bias)
        }
        net = Stacked(
            [layer.weight.detach().unsqueeze(0) for layer in linears],
            [layer.bias.detach().unsqueeze(0) for layer in linears],
            [grads[id(layer.weight)] for layer in linears],
            [grads[id(layer.bias)] for layer in linears],
            self.layout.negative_slope,
        )
        loss = features.new_zeros(1)
        x, targets = features.unsqueeze(0), targets_one_hot.unsqueeze(0)
        cross_entropy_step(net, x, targets, masks, features.shape[0], loss)
        for layer in linears:
            for t in (layer.weight, layer.bias):
                if grads[id(t)] is not None:
                    t.grad = grads[id(t)][0]
        return loss[0]
