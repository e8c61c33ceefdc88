"""The multilayer perceptron used across the lesson, built from parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import torch
from torch import nn

from .config import ModelParams


def build_mlp(
    input_dim: int,
    hidden_dims: Sequence[int],
    n_classes: int,
    negative_slope: float = 0.01,
    dropout: float = 0.0,
) -> nn.Sequential:
    """Linear → LeakyReLU [→ Dropout] per hidden layer, then a linear layer of logits.

    There is no Softmax at the end: ``CrossEntropyLoss`` applies log-softmax itself, and a
    second softmax flattens the gradients (the lesson's original mistake). Each hidden layer
    gets its own activation module, so that a module graph or hook sees one per layer.
    """
    layers: list[nn.Module] = []
    widths = [input_dim, *hidden_dims]
    for fan_in, fan_out in zip(widths[:-1], widths[1:]):
        linear = nn.Linear(fan_in, fan_out)
        # Kaiming-normal scaled for LeakyReLU keeps activations' variance stable layer to layer.
        nn.init.kaiming_normal_(linear.weight, a=negative_slope, nonlinearity="leaky_relu")
        nn.init.zeros_(linear.bias)
        layers += [linear, nn.LeakyReLU(negative_slope)]
        if dropout > 0:
            layers.append(nn.Dropout(dropout))
    head = nn.Linear(widths[-1], n_classes)
    nn.init.kaiming_normal_(head.weight, a=negative_slope, nonlinearity="leaky_relu")
    nn.init.zeros_(head.bias)
    layers.append(head)
    return nn.Sequential(*layers)


def mlp_from_params(model: ModelParams) -> nn.Sequential:
    """Builds the MLP described by a ``model`` parameter block (its widths derived)."""
    model.widths()
    return build_mlp(**model.model_dump())


def load_mlp(state_dict: Mapping[str, torch.Tensor], model: ModelParams) -> nn.Sequential:
    """Rebuilds the network from parameters and loads weights into it, naming any mismatch."""
    network = mlp_from_params(model)
    expected = {k: tuple(v.shape) for k, v in network.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in state_dict.items()}
    if expected != given:
        missing = sorted(set(expected) - set(given))
        unexpected = sorted(set(given) - set(expected))
        shapes = [
            f"{k}: saved {given[k]} vs model {expected[k]}"
            for k in sorted(set(expected) & set(given))
            if expected[k] != given[k]
        ]
        raise ValueError(
            "the saved weights do not fit the network described by the 'model' parameters "
            f"{model.dump()}: missing {missing}, unexpected {unexpected}, shapes {shapes}"
        )
    network.load_state_dict(state_dict)
    return network
