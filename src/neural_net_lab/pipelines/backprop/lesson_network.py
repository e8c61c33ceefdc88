"""The lesson's network: the sigmoid layers of ``params:backprop`` (2-2-2 as shipped) on its one
example, loss ½·Σ(output − target)². Its backward pass written out by the chain rule in NumPy,
and the same network as an ``nn.Module`` for autograd, SGD and finite differences."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any

import numpy as np
import torch
from torch import nn

from .params import BackpropParams


def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def chain_rule(backprop: BackpropParams) -> dict[str, Any]:
    """Forward pass and every gradient by the chain rule, layer by layer, in float64 NumPy."""
    names = list(backprop.network)
    weights = [np.array(layer.weight, dtype=np.float64) for layer in backprop.network.values()]
    biases = [np.array(layer.bias, dtype=np.float64) for layer in backprop.network.values()]
    target = np.array(backprop.example.target, dtype=np.float64)

    # activations[l] is a⁽ˡ⁾, with a⁽⁰⁾ the input; weights[l - 1] is W⁽ˡ⁾.
    activations = [np.array(backprop.example.input, dtype=np.float64)]
    pre_activations = []
    for weight, bias in zip(weights, biases):
        pre_activations.append(weight @ activations[-1] + bias)  # z⁽ˡ⁾ = W⁽ˡ⁾ a⁽ˡ⁻¹⁾ + b⁽ˡ⁾
        activations.append(_sigmoid(pre_activations[-1]))  # a⁽ˡ⁾ = σ(z⁽ˡ⁾)
    output = activations[-1]
    loss = 0.5 * np.sum((output - target) ** 2)

    # σ′(z) = σ(z)(1 − σ(z)): the derivative reuses the activation of the forward pass.
    # Output layer L: δ⁽ᴸ⁾ = ∂L/∂a⁽ᴸ⁾ ⊙ σ′(z⁽ᴸ⁾) with ∂L/∂a⁽ᴸ⁾ = a⁽ᴸ⁾ − t.
    delta = (output - target) * output * (1.0 - output)
    gradients: dict[str, np.ndarray] = {}
    for layer in range(len(weights), 0, -1):
        below = activations[layer - 1]
        gradients[f"{names[layer - 1]}.weight"] = np.outer(delta, below)  # δ⁽ˡ⁾ a⁽ˡ⁻¹⁾ᵀ
        gradients[f"{names[layer - 1]}.bias"] = delta  # ∂z⁽ˡ⁾/∂b⁽ˡ⁾ = 1
        if layer > 1:
            # δ⁽ˡ⁻¹⁾ = (W⁽ˡ⁾ᵀ δ⁽ˡ⁾) ⊙ σ′(z⁽ˡ⁻¹⁾), with W⁽ˡ⁾ as it was in the forward pass:
            # updating a layer before the error has passed through it gives wrong gradients.
            delta = (weights[layer - 1].T @ delta) * below * (1.0 - below)
    return {
        "loss": float(loss),
        "forward": {
            name: {"z": z, "a": a} for name, z, a in zip(names, pre_activations, activations[1:])
        },
        "gradients": {
            f"{name}.{kind}": gradients[f"{name}.{kind}"]  # input side first
            for name in names
            for kind in ("weight", "bias")
        },
    }


def sigmoid_network(backprop: BackpropParams) -> nn.Sequential:
    """The layers as float64 ``nn.Linear`` modules, each followed by ``nn.Sigmoid``."""
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for name, layer in backprop.network.items():
        weight = torch.tensor(layer.weight, dtype=torch.float64)
        linear = nn.Linear(weight.shape[1], weight.shape[0], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(torch.tensor(layer.bias, dtype=torch.float64))
        modules[name] = linear
        modules[f"{name}_sigmoid"] = nn.Sigmoid()
    return nn.Sequential(modules)


def example(backprop: BackpropParams) -> tuple[torch.Tensor, torch.Tensor]:
    """The example as a batch of one row, the shape every nn.Module expects."""
    return (
        torch.tensor([backprop.example.input], dtype=torch.float64),
        torch.tensor([backprop.example.target], dtype=torch.float64),
    )


def half_squared_error(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """½·Σ(output − target)² over rows and outputs; leading dimensions are kept."""
    return 0.5 * (outputs - target).square().sum(dim=(-2, -1))
