"""The multilayer perceptron used across the lesson, built from parameters."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import torch
from torch import nn


def _positive_int(value: Any, name: str) -> int:
    if isinstance(value, bool) or not isinstance(value, int) or value < 1:
        raise ValueError(f"model parameter '{name}' must be a positive integer, got {value!r}")
    return value


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
    _positive_int(input_dim, "input_dim")
    _positive_int(n_classes, "n_classes")
    if isinstance(hidden_dims, (str, bytes)) or not isinstance(hidden_dims, Sequence):
        raise ValueError(f"model parameter 'hidden_dims' must be a list of sizes, got {hidden_dims!r}")
    for i, width in enumerate(hidden_dims):
        _positive_int(width, f"hidden_dims[{i}]")
    if not isinstance(negative_slope, (int, float)) or negative_slope < 0:
        raise ValueError(f"model parameter 'negative_slope' must be >= 0, got {negative_slope!r}")
    if not isinstance(dropout, (int, float)) or not 0 <= dropout < 1:
        raise ValueError(f"model parameter 'dropout' must be in [0, 1), got {dropout!r}")

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


def mlp_from_params(model_params: Mapping[str, Any]) -> nn.Sequential:
    """Builds the MLP described by a ``model`` parameter block."""
    known = {"input_dim", "hidden_dims", "n_classes", "negative_slope", "dropout"}
    unknown = sorted(set(model_params) - known)
    if unknown:
        raise ValueError(f"unknown model parameter(s) {unknown}; expected some of {sorted(known)}")
    return build_mlp(**model_params)


def load_mlp(state_dict: Mapping[str, torch.Tensor], model_params: Mapping[str, Any]) -> nn.Sequential:
    """Rebuilds the network from parameters and loads weights into it, naming any mismatch."""
    model = mlp_from_params(model_params)
    expected = {k: tuple(v.shape) for k, v in model.state_dict().items()}
    given = {k: tuple(v.shape) for k, v in state_dict.items()}
    if expected != given:
        missing = sorted(set(expected) - set(given))
        unexpected = sorted(set(given) - set(expected))
        shapes = [f"{k}: saved {given[k]} vs model {expected[k]}"
                  for k in sorted(set(expected) & set(given)) if expected[k] != given[k]]  # fmt: skip
        raise ValueError(
            "the saved weights do not fit the network described by the 'model' parameters "
            f"{dict(model_params)}: missing {missing}, unexpected {unexpected}, shapes {shapes}"
        )
    model.load_state_dict(state_dict)
    return model
