"""Networks that carry their own scaler, and the mean of several of them: a fold ensemble.

The k networks of a cross-validation each learned on features standardized by their own
fold's scaler, so a member is the pair (scaler, network) and raw features go in. The
ensemble's class probabilities are the mean of its members' softmax probabilities
(cross-validation bagging, as AutoGluon's bagged models do). One network with the scaler of
the whole training split is the ensemble of one, so the default model and a refit share the
same code and the same saved form.

``Ensemble`` is an ``nn.ModuleList``: its ``state_dict`` (every member's scaler buffers and
weights) is what the catalog's ``PyTorchDataset`` saves and loads with ``weights_only=True``;
``load_ensemble`` rebuilds it from that dict and the ``model`` block.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import torch
from torch import nn

from .config import ModelParams
from .model import load_mlp, mlp_from_params


class ScaledNetwork(nn.Module):
    """Raw features → StandardScaler's arithmetic (float64) → the MLP's logits (float32)."""

    def __init__(self, mean: np.ndarray, scale: np.ndarray, network: nn.Sequential):
        super().__init__()
        self.register_buffer("mean", torch.as_tensor(np.asarray(mean, dtype="float64")))
        self.register_buffer("scale", torch.as_tensor(np.asarray(scale, dtype="float64")))
        self.network = network

    def forward(self, raw: torch.Tensor) -> torch.Tensor:
        # The same float64 arithmetic as StandardScaler.transform, so the float32 inputs are
        # bitwise those the network was trained on.
        return self.network(((raw.to(torch.float64) - self.mean) / self.scale).to(torch.float32))


class Ensemble(nn.ModuleList):
    """Members of one architecture whose softmax probabilities are averaged."""

    @torch.no_grad()
    def probabilities(self, raw: np.ndarray | torch.Tensor) -> np.ndarray:
        """Mean class probabilities (float64) of every member for raw feature rows."""
        self.eval()
        raw = torch.as_tensor(np.array(raw, dtype="float64"))
        # Softmax belongs here, at prediction time; training feeds logits to CrossEntropyLoss.
        total = sum(torch.softmax(member(raw), dim=1).to(torch.float64) for member in self)
        return (total / len(self)).numpy()


def state_of(network: nn.Module | Mapping[str, torch.Tensor]) -> Mapping[str, torch.Tensor]:
    """A module's state dict; a state dict (what the catalog's ``PyTorchDataset`` hands a
    downstream node within a run) as it is."""
    return network.state_dict() if isinstance(network, nn.Module) else network


def build_ensemble(
    members: Sequence[tuple[np.ndarray, np.ndarray, Mapping[str, torch.Tensor]]],
    model: ModelParams,
) -> Ensemble:
    """An ensemble from (scaler mean, scaler scale, network state dict) per member."""
    if not members:
        raise ValueError("an ensemble needs at least one member")
    return Ensemble(
        ScaledNetwork(mean, scale, load_mlp(state, model)) for mean, scale, state in members
    )


def load_ensemble(state_dict: Mapping[str, torch.Tensor], model: ModelParams) -> Ensemble:
    """Rebuilds a saved ``Ensemble`` (its ``state_dict``) for the ``model`` block."""
    count = len({key.split(".", 1)[0] for key in state_dict})
    if count == 0 or any(f"{k}.mean" not in state_dict for k in range(count)):
        raise ValueError(
            "the saved ensemble holds no members numbered 0..k-1 with a scaler; rerun "
            "`kedro run --pipelines tuning`"
        )
    width = state_dict["0.mean"].shape[0]
    ensemble = Ensemble(
        ScaledNetwork(np.zeros(width), np.ones(width), mlp_from_params(model)) for _ in range(count)
    )
    expected = set(ensemble.state_dict())
    if expected != set(state_dict):
        raise ValueError(
            "the saved ensemble does not fit the network described by the 'model' parameters "
            f"{model.dump()}: missing {sorted(expected - set(state_dict))[:5]}, unexpected "
            f"{sorted(set(state_dict) - expected)[:5]}"
        )
    ensemble.load_state_dict(state_dict)
    return ensemble.eval()
