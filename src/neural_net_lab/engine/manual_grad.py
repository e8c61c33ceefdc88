"""Hand-derived backward pass of an MLP with cross-entropy, the backprop lesson's formulas.

For a batch of B rows, logits z⁽ᴸ⁾ and one-hot targets Y, the mean cross-entropy gives
δ⁽ᴸ⁾ = (softmax(z⁽ᴸ⁾) − Y) / B. Going back through each layer l:
∂L/∂W⁽ˡ⁾ = δ⁽ˡ⁾ᵀ a⁽ˡ⁻¹⁾ and ∂L/∂b⁽ˡ⁾ = Σ_rows δ⁽ˡ⁾ (PyTorch's [out, in] layout), the error
reaching the layer below is δ⁽ˡ⁾ W⁽ˡ⁾, LeakyReLU multiplies it by 1 where its input was
positive and by the slope elsewhere, and dropout by its mask.

This is the backprop lesson's demonstration (``kedro run --pipelines backprop`` checks it in
float64 against autograd and finite differences), written layer by layer for any such
``nn.Sequential``. Training does not use it: every hand-derived training runs the batched
formulas of ``engine.stacked`` (a single network as a stack of one).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn import functional as F

_SUPPORTED = (nn.Linear, nn.LeakyReLU, nn.ReLU, nn.Dropout, nn.Identity)


class ManualMLPGradient:
    """Forward and hand-derived backward for ``nn.Sequential`` of Linear/LeakyReLU/ReLU/Dropout."""

    def __init__(self, model: nn.Module):
        if not self.supports(model):
            raise TypeError(
                "hand-derived gradients need an nn.Sequential of Linear, LeakyReLU, ReLU and "
                f"Dropout layers ending in Linear; got {model}"
            )
        self.layers = list(model)
        # Detached aliases share storage with the parameters (optimizers update in place),
        # so the arithmetic below reads current weights without autograd's dispatch cost.
        self._weights = [
            (layer.weight.detach(), None if layer.bias is None else layer.bias.detach())
            if isinstance(layer, nn.Linear)
            else None
            for layer in self.layers
        ]

    @staticmethod
    def supports(model: nn.Module) -> bool:
        """True for the plain MLPs that ``build_mlp`` makes (and any like them)."""
        if not isinstance(model, nn.Sequential) or len(model) == 0:
            return False
        layers = list(model)
        return all(isinstance(layer, _SUPPORTED) for layer in layers) and isinstance(
            layers[-1], nn.Linear
        )

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
        """
        saved: list[torch.Tensor | None] = []
        h = features
        for layer, weights in zip(self.layers, self._weights):
            if weights is not None:
                saved.append(h)
                weight, bias = weights
                h = h.mm(weight.t()) if bias is None else torch.addmm(bias, h, weight.t())
            elif isinstance(layer, nn.LeakyReLU | nn.ReLU):
                saved.append(h)
                h = F.leaky_relu(h, _slope(layer))
            elif isinstance(layer, nn.Dropout) and training and layer.p > 0:
                keep = torch.rand(h.shape, generator=generator) >= layer.p
                mask = keep.to(h.dtype).div_(1.0 - layer.p)
                saved.append(mask)
                h = h * mask
            else:
                saved.append(None)

        log_probs = F.log_softmax(h, dim=1)
        loss_sum = -torch.vdot(log_probs.view(-1), targets_one_hot.reshape(-1))
        # Cross-entropy of softmax: δ = (p − y) / B, computed in place on the buffer.
        delta = log_probs.exp_().sub_(targets_one_hot).div_(h.shape[0])

        for index in range(len(self.layers) - 1, -1, -1):
            layer, stored, weights = self.layers[index], saved[index], self._weights[index]
            if weights is not None:
                if layer.weight.requires_grad:
                    layer.weight.grad = delta.t().mm(stored)
                if layer.bias is not None and layer.bias.requires_grad:
                    layer.bias.grad = delta.sum(dim=0)
                if index == 0:
                    break
                delta = delta.mm(weights[0])
            elif isinstance(layer, nn.LeakyReLU | nn.ReLU):
                # δ · (1 where the input was > 0, else the slope): the fused kernel that
                # autograd calls, so the convention at exactly 0 matches too.
                delta = torch.ops.aten.leaky_relu_backward(delta, stored, _slope(layer), False)
            elif stored is not None:
                delta = delta * stored
        return loss_sum


def _slope(activation: nn.Module) -> float:
    return activation.negative_slope if isinstance(activation, nn.LeakyReLU) else 0.0
