"""The MLP: the one place that knows its layout.

``build_mlp`` makes it (Linear → LeakyReLU [→ Dropout] per hidden layer, then Linear) and
``mlp_layout`` reads that layout back for the code that works on its tensors directly: the
hand-derived gradients (``engine.manual_grad``), the stacked training (``engine.stack``) and
the served model (``serving.network_layers``). A new layer type goes into both: until
``mlp_layout`` knows it, those refuse the network with a ``LayoutError`` naming the layer
(training then falls back to autograd, or fails under ``gradients: manual``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

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


class LayoutError(ValueError):
    """A network that is not shaped as ``build_mlp`` makes it."""


@dataclass(frozen=True)
class MLPLayout:
    """An MLP's Linear layers in order, their names in the ``nn.Sequential``, and the one
    LeakyReLU slope (0 for ReLU) and dropout p between them."""

    keys: tuple[str, ...]
    linears: tuple[nn.Linear, ...]
    negative_slope: float
    dropout: float


def mlp_layout(model: nn.Module) -> MLPLayout:
    """The layout of a network shaped as ``build_mlp`` makes it: an ``nn.Sequential`` of
    Linear (with a bias), then per hidden layer LeakyReLU or ReLU and an optional Dropout,
    one slope and one dropout p throughout, Linear last. Raises ``LayoutError`` naming the
    first layer that does not fit."""
    if not isinstance(model, nn.Sequential) or len(model) == 0:
        raise LayoutError(f"{_SHAPE}; got a {type(model).__name__}")
    # What may follow each kind of layer; "end" may end the network.
    follows = {
        None: {"linear"},
        "linear": {"activation", "end"},
        "activation": {"linear", "dropout"},
        "dropout": {"linear"},
    }
    keys, linears, slopes, drops, previous = [], [], set(), set(), None
    for key, layer in model.named_children():
        kind = _kind(layer)
        if kind not in follows[previous]:
            raise LayoutError(f"{_SHAPE}; layer {key} is {layer!r}")
        if kind == "linear":
            keys.append(key)
            linears.append(layer)
            if previous == "activation":
                drops.add(0.0)
        elif kind == "activation":
            slopes.add(layer.negative_slope if isinstance(layer, nn.LeakyReLU) else 0.0)
        else:
            drops.add(layer.p)
        previous = kind
    if previous != "linear" or len(slopes) > 1 or len(drops) > 1:
        raise LayoutError(f"{_SHAPE}; got {model}")
    return MLPLayout(
        tuple(keys),
        tuple(linears),
        slopes.pop() if slopes else 0.0,
        drops.pop() if drops else 0.0,
    )


_SHAPE = (
    "the hand-derived code knows MLPs shaped as build_mlp makes them (Linear with bias, then "
    "LeakyReLU or ReLU and an optional Dropout per hidden layer, one slope and one dropout p "
    "throughout, Linear last)"
)


def _kind(layer: nn.Module) -> str | None:
    if isinstance(layer, nn.Linear) and layer.bias is not None:
        return "linear"
    if isinstance(layer, nn.LeakyReLU | nn.ReLU):
        return "activation"
    if isinstance(layer, nn.Dropout):
        return "dropout"
    return None
