"""The shared PyTorch engine: model builder, optimizer factory, hand-derived gradients, loop."""

from __future__ import annotations

import pytest
import torch
from torch.nn import functional as F

from neural_net_lab.engine import (
    ManualMLPGradient,
    build_mlp,
    build_optimizer,
    load_mlp,
    seed_everything,
)
from neural_net_lab.engine.config import ModelParams, OptimizerParams, TrainingParams
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.engine.fit import fit_classifier
from neural_net_lab.engine.overrides import merge

MODEL = ModelParams(input_dim=20, hidden_dims=[128, 256], n_classes=4)


def test_default_architecture_has_no_softmax_and_kaiming_scale():
    seed_everything(0)
    model = build_mlp(20, [128, 256], 4)
    assert [type(m).__name__ for m in model] == [
        "Linear",
        "LeakyReLU",
        "Linear",
        "LeakyReLU",
        "Linear",
    ]
    assert model[1] is not model[3]  # one activation module per layer
    # Kaiming normal for LeakyReLU(0.01): std = sqrt(2 / (1 + 0.01²) / fan_in)
    expected = (2 / (1 + 0.01**2) / 128) ** 0.5
    assert model[2].weight.std().item() == pytest.approx(expected, rel=0.05)


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({**MODEL.dump(), "hidden_dims": [128, 0]}, r"model.hidden_dims\[1\]: must be >= 1, got 0"),
        ({**MODEL.dump(), "dropout": 1.0}, r"model.dropout: must be < 1, got 1.0"),
        ({**MODEL.dump(), "width": 3}, r"model.width: unknown setting \(a typo\?\)"),
    ],
)
def test_bad_model_parameters_are_named(params, message):
    with pytest.raises(ParameterError, match=message):
        ModelParams.model_validate(params)


def test_load_mlp_names_architecture_mismatch():
    state = build_mlp(20, [64], 4).state_dict()
    with pytest.raises(ValueError, match=r"0.weight: saved \(64, 20\) vs model \(128, 20\)"):
        load_mlp(state, MODEL)


@pytest.mark.parametrize(
    ("config", "message"),
    [
        ({"name": "Adamm", "lr": 0.1}, r"training.optimizer.name: unknown optimizer 'Adamm'"),
        ({"name": "SGD", "lr": -1}, r"training.optimizer.lr: must be > 0, got -1"),
        (
            {"name": "SGD", "lr": 0.1, "betas": [0.9, 0.99]},
            r"training.optimizer.betas: SGD has no setting 'betas'",
        ),
        (
            {"name": "SGD", "lr": 0.1, "momentum": -0.5},
            r"training.optimizer.momentum: must be >= 0, got -0.5",
        ),
        (
            {"name": "SGD", "lr": 0.1, "nesterov": True},
            r"training.optimizer: SGD refused its settings: Nesterov momentum requires",
        ),
    ],
)
def test_an_optimizer_block_names_bad_settings(config, message):
    with pytest.raises(ValueError, match=message):
        OptimizerParams.at("training.optimizer").model_validate(config)


def test_optimizer_factory_accepts_parameter_groups():
    model = build_mlp(2, [3], 2)
    groups = [{"params": model[0].parameters(), "lr": 0.01}, {"params": model[2].parameters()}]
    optimizer = build_optimizer(groups, OptimizerParams(name="Adam", lr=0.1))
    assert [g["lr"] for g in optimizer.param_groups] == [0.01, 0.1]


@pytest.mark.parametrize("frozen_first_layer", [False, True])
def test_hand_derived_gradients_match_autograd(frozen_first_layer):
    torch.manual_seed(3)
    model = build_mlp(20, [128, 256], 4).double()
    if frozen_first_layer:
        model[0].requires_grad_(False)
    x = torch.randn(16, 20, dtype=torch.float64)
    y = torch.randint(0, 4, (16,))
    loss = F.cross_entropy(model(x), y)
    loss.backward()
    expected = {n: p.grad.clone() for n, p in model.named_parameters() if p.requires_grad}
    model.zero_grad(set_to_none=True)

    summed = ManualMLPGradient(model).loss_and_gradients(x, F.one_hot(y, 4).double())
    assert summed.item() / 16 == pytest.approx(loss.item(), rel=1e-12)
    for name, param in model.named_parameters():
        if param.requires_grad:
            torch.testing.assert_close(param.grad, expected[name], rtol=1e-10, atol=1e-12)
        else:
            assert param.grad is None


def test_training_loss_decreases_and_is_reproducible(model_inputs, table_schema):
    training = TrainingParams.model_validate(
        {
            "seed": 7,
            "epochs": 5,
            "batch_size": 16,
            "validation_share": 0.1,
            "optimizer": {"name": "Adam", "lr": 0.001},
            "progress": False,
        }
    )
    fit_set, validation_set = model_inputs["fit_set"], model_inputs["validation_set"]
    runs = [
        fit_classifier(fit_set, validation_set, MODEL, training, table_schema) for _ in range(2)
    ]
    (model_a, history_a, _), (model_b, history_b, _) = runs
    assert history_a["train_loss"][-1] < 0.5 * history_a["train_loss"][0]
    assert history_a["val_accuracy"][-1] > 0.7
    assert history_a == history_b
    for (name, a), b in zip(model_a.state_dict().items(), model_b.state_dict().values()):
        assert torch.equal(a, b), name


def test_merge_replaces_optimizer_block_when_the_name_changes():
    base = {"epochs": 100, "optimizer": {"name": "Adam", "lr": 0.001, "betas": [0.9, 0.999]}}
    assert merge(base, {"optimizer": {"name": "SGD", "lr": 0.01}}) == {
        "epochs": 100,
        "optimizer": {"name": "SGD", "lr": 0.01},
    }
    assert merge(base, {"optimizer": {"lr": 0.01}})["optimizer"]["betas"] == [0.9, 0.999]


def test_bad_training_parameter_is_named():
    training = {"seed": 1, "epochs": 0, "batch_size": 16, "optimizer": {"name": "Adam"}}
    with pytest.raises(ParameterError, match="training.epochs: must be >= 1, got 0"):
        TrainingParams.model_validate(training)
