"""Network surgery: the source network checked and cut below its head, and the target network
grown from its hidden layers (a new head, frozen or not) with the optimizer groups that train
it at two learning rates."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import torch
from torch import nn

from neural_net_lab.engine.config import ModelParams
from neural_net_lab.engine.model import load_mlp, mlp_from_params
from neural_net_lab.table import TableSchema

from .params import StrategyParams


def prepare_source_model(
    state: dict[str, torch.Tensor], model: ModelParams, schema: TableSchema
) -> dict[str, torch.Tensor]:
    """Checks the saved network against ``model`` with the source table's widths; returns its
    hidden layers.

    The old head (one logit per source class) is dropped: every strategy gets a new head.
    """
    source = load_mlp(state, schema.network(model))  # names any architecture mismatch
    head = f"{len(source) - 1}."
    return {k: v.detach().clone() for k, v in source.state_dict().items() if not k.startswith(head)}


def build_target_network(
    pretrained: Mapping[str, torch.Tensor],
    model: ModelParams,
    strategy: StrategyParams,
) -> nn.Sequential:
    """The source architecture with the head ``model`` describes (one logit per new class).

    With ``init: pretrained`` the hidden layers start from the source weights, and with
    ``freeze: true`` they keep them (``requires_grad=False``); the head always starts random.
    """
    network = mlp_from_params(model)
    head = len(network) - 1
    if strategy.init == "pretrained":
        # Strict: a hidden-layer key or shape that does not fit is named by PyTorch.
        network.load_state_dict({**network.state_dict(), **pretrained})
    if strategy.freeze:
        for name, parameter in network.named_parameters():
            if not name.startswith(f"{head}."):
                parameter.requires_grad_(False)
    return network


def parameter_groups(
    model: nn.Sequential, lr: float, hidden_lr_factor: float
) -> list[dict[str, Any]]:
    """Optimizer groups: the head at ``lr``, trainable hidden layers at ``lr × factor``.

    Frozen parameters are left out, so the optimizer holds no state for them.
    """
    head = f"{len(model) - 1}."
    hidden = [p for n, p in model.named_parameters() if not n.startswith(head) and p.requires_grad]
    groups = [{"params": [p for n, p in model.named_parameters() if n.startswith(head)], "lr": lr}]
    if hidden:
        groups.insert(0, {"params": hidden, "lr": lr * hidden_lr_factor})
    return groups
