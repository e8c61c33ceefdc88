"""engine.train: one network (a stack of one) against autograd, the reference path.

For every optimizer and regularizer the project ships (the optimizers and regularization
experiments, the tuning search space) and for what transfer needs (pretrained weights,
frozen layers, parameter groups, no validation rows), the same seed gives the same
trajectory on both paths to float rounding: weights, losses and validation accuracies
after three epochs of seven steps, the last one a one-row batch.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from torch import nn

from neural_net_lab.engine import Member, StackingUnsupported, build_mlp, seed_everything, train
from neural_net_lab.engine.config import TrainingParams
from tests.conftest import FEATURES

LOGGER = "neural_net_lab.engine"
ADAM = {"name": "Adam", "lr": 0.01}
NOISE = {"name": "gaussian_noise", "std": 0.1}
# name: (optimizer, build_mlp settings, train settings)
CASES = {
    # The optimizers experiment and the tuning search space.
    "sgd": ({"name": "SGD", "lr": 0.05}, {}, {}),
    "sgd_momentum": ({"name": "SGD", "lr": 0.05, "momentum": 0.9}, {}, {}),
    "sgd_nesterov_l2": (
        {"name": "SGD", "lr": 0.05, "momentum": 0.9, "nesterov": True, "weight_decay": 1e-3},
        {},
        {},
    ),
    "adagrad": ({"name": "Adagrad", "lr": 0.01}, {}, {}),
    "rmsprop": ({"name": "RMSprop", "lr": 0.001}, {}, {}),
    "adam": ({"name": "Adam", "lr": 0.01}, {}, {}),
    "adam_not_fused": ({"name": "Adam", "lr": 0.01, "fused": False}, {}, {}),
    "adamw": ({"name": "AdamW", "lr": 0.01, "weight_decay": 0.01}, {}, {}),
    # The regularization experiment's variants.
    "l1": ({"name": "Adam", "lr": 0.01}, {}, {"l1_lambda": 1e-3}),
    "l2": ({"name": "Adam", "lr": 0.01, "weight_decay": 1e-3}, {}, {}),
    "dropout": ({"name": "Adam", "lr": 0.01}, {"dropout": 0.5}, {}),
    "augmentation": ({"name": "Adam", "lr": 0.01}, {}, {"augmentation": NOISE}),
    "dropout_l2": ({"name": "Adam", "lr": 0.01, "weight_decay": 1e-3}, {"dropout": 0.5}, {}),
    "everything_sgd": (
        {"name": "SGD", "lr": 0.05, "momentum": 0.9, "weight_decay": 1e-3},
        {"dropout": 0.2},
        {"l1_lambda": 1e-3, "augmentation": NOISE},
    ),
}


@pytest.fixture(scope="module")
def rows(raw_phones, columns):
    features = raw_phones[FEATURES].to_numpy(dtype=np.float64)
    features = torch.from_numpy(((features - features.mean(0)) / features.std(0)).astype("f4"))
    labels = torch.from_numpy(raw_phones[columns["target"]].to_numpy(dtype=np.int64, copy=True))
    # 97 training rows: six batches of 16 and one of a single row.
    return features[:97], labels[:97], (features[100:140], labels[100:140])


def _settings(optimizer, gradients="auto", epochs=3, batch_size=16, **changes) -> TrainingParams:
    return TrainingParams.model_validate(
        {"seed": 3, "epochs": epochs, "batch_size": batch_size, "optimizer": optimizer}
        | {"gradients": gradients, "progress": False}
        | changes
    )


def _train(rows, gradients, optimizer, model_changes, train_changes, prepare=None, validated=True):
    """Seed 3, the small network (``prepare`` may load, freeze or group its parameters)."""
    features, labels, validation = rows
    generator = seed_everything(3)
    network = build_mlp(20, [32, 16], 4, **model_changes)
    parameters = prepare(network) if prepare else None
    member = Member(
        network, features, labels, generator, validation if validated else None, parameters
    )
    (history,) = train([member], _settings(optimizer, gradients, **train_changes))
    return history, network


def _assert_same_trajectory(one, reference, validation_rows=40):
    (history, network), (expected_history, expected_network) = one, reference
    assert history.keys() == expected_history.keys()
    np.testing.assert_allclose(history["train_loss"], expected_history["train_loss"], rtol=1e-5)
    if "val_loss" in expected_history:
        np.testing.assert_allclose(history["val_loss"], expected_history["val_loss"], rtol=1e-5)
        np.testing.assert_allclose(
            history["val_accuracy"], expected_history["val_accuracy"], atol=1 / validation_rows
        )
    expected = expected_network.state_dict()
    for key, value in network.state_dict().items():
        scale = expected[key].abs().max().item()
        difference = (value - expected[key]).abs().max().item()
        assert difference <= 1e-5 * scale, f"{key}: differs by {difference} (max |w| {scale})"


@pytest.mark.parametrize("case", list(CASES))
def test_the_one_path_follows_autograd(rows, case, caplog):
    with caplog.at_level(logging.INFO, logger=LOGGER):
        one = _train(rows, "auto", *CASES[case])
    assert "(hand-derived gradients)" in caplog.text  # the stack of one, not a fallback
    _assert_same_trajectory(one, _train(rows, "autograd", *CASES[case]))


def _pretrained_body(network: nn.Sequential) -> None:
    """Hidden layers from another seeded network, as transfer loads a source model's."""
    source = build_mlp(20, [32, 16], 4, negative_slope=0.01)
    with torch.no_grad():
        for index in (0, 2):
            network[index].weight.copy_(source[index].weight * 3)
            network[index].bias.copy_(torch.linspace(-0.5, 0.5, source[index].bias.shape[0]))


def _freeze(network: nn.Sequential) -> list[torch.Tensor]:
    _pretrained_body(network)
    network[0].requires_grad_(False)
    network[2].requires_grad_(False)
    return [p for p in network.parameters() if p.requires_grad]


def _finetune(network: nn.Sequential) -> list[dict]:
    _pretrained_body(network)
    hidden = [*network[0].parameters(), *network[2].parameters()]
    return [{"params": hidden, "lr": 0.001}, {"params": network[4].parameters()}]


def _freeze_first_layer(network: nn.Sequential) -> list[torch.Tensor]:
    network[0].requires_grad_(False)
    return [p for p in network.parameters() if p.requires_grad]


@pytest.mark.parametrize("prepare", [_freeze, _finetune, _freeze_first_layer])
@pytest.mark.parametrize("optimizer", [{"name": "Adam", "lr": 0.01}, {"name": "SGD", "lr": 0.05}])
def test_transfer_strategies_follow_autograd_without_validation_rows(
    rows, prepare, optimizer, caplog
):
    """Pretrained starting weights, frozen layers and per-layer learning rates, no
    validation rows (transfer's strategies, the tuning refit)."""
    case = (optimizer, {}, {"l1_lambda": 1e-3}, prepare)
    with caplog.at_level(logging.INFO, logger=LOGGER):
        one = _train(rows, "auto", *case, validated=False)
    assert "(hand-derived gradients)" in caplog.text
    reference = _train(rows, "autograd", *case, validated=False)
    assert list(one[0]) == ["train_loss"]
    _assert_same_trajectory(one, reference)
    seed_everything(3)
    start = build_mlp(20, [32, 16], 4)
    prepare(start)  # the network both paths started from
    for name, parameter in one[1].named_parameters():
        if not parameter.requires_grad:
            assert torch.equal(parameter, start.state_dict()[name]), name
            assert parameter.grad is None, name


def test_a_network_the_stack_cannot_take_trains_through_autograd_with_a_warning(rows, caplog):
    features, labels, validation = rows
    network = nn.Sequential(nn.Linear(20, 8), nn.Tanh(), nn.Linear(8, 4))
    generator = torch.Generator().manual_seed(0)
    member = Member(network, features, labels, generator, validation, name="tanh net")
    with caplog.at_level(logging.INFO, logger=LOGGER):
        (history,) = train([member], _settings(ADAM, epochs=2))
    assert "tanh net: trained through autograd, not stacked: the hand-derived code" in caplog.text
    assert "layer 1 is Tanh()" in caplog.text
    assert "(autograd gradients)" in caplog.text
    assert history["train_loss"][-1] < history["train_loss"][0]
    with pytest.raises(StackingUnsupported, match="the hand-derived code knows MLPs shaped"):
        train([member], _settings(ADAM, "manual", epochs=2))


def test_lbfgs_trains_through_autograd_with_a_warning(rows, caplog):
    features, labels, _ = rows
    network = build_mlp(20, [8], 4)
    member = Member(network, features, labels, torch.Generator().manual_seed(0))
    lbfgs = {"name": "LBFGS", "lr": 0.5, "max_iter": 4}
    with caplog.at_level(logging.INFO, logger=LOGGER):
        (history,) = train([member], _settings(lbfgs, epochs=2, batch_size=32))
    assert "training: trained through autograd, not stacked: training.optimizer.name: LBFGS" in (
        caplog.text
    )
    assert history["train_loss"][-1] < history["train_loss"][0]
