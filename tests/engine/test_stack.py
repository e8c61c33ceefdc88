"""Stacked training: each member computes what a single network computes alone.

The reference is the single-network path (seed_everything, build the MLP, ``train`` it
alone) with the member's seed and rows: a stack of one, and ``gradients: autograd``, the
reference path. On the machines these tests were written on the stacked members and the
stack of one agree to the bit; the tests ask for what the issues ask (weights to relative
1e-5 after a few epochs, validation accuracies within one row after 100), so that another
CPU whose BLAS orders sums differently for batched and plain products still passes.
"""

from __future__ import annotations

import logging

import numpy as np
import pytest
import torch
from sklearn.model_selection import StratifiedKFold

from neural_net_lab.engine import Member, StackingUnsupported, load_mlp, seed_everything, train
from neural_net_lab.engine.config import ModelParams, OptimizerParams, TrainingParams
from neural_net_lab.engine.cv import cross_validate
from neural_net_lab.engine.model import mlp_from_params
from neural_net_lab.engine.optim import StackedParameters, build_optimizer, stacking_refusal
from tests.conftest import FEATURES

SMALL = ModelParams(input_dim=20, hidden_dims=[32, 16], n_classes=4)
# 96 rows: six full batches; 97: a last batch of one row; 81: one step fewer than the others.
ROWS = [96, 97, 81]


def _training(**changes) -> TrainingParams:
    base = {"seed": 0, "epochs": 3, "batch_size": 16, "optimizer": {"name": "Adam", "lr": 0.01}}
    return TrainingParams.model_validate(base | {"progress": False} | changes)


@pytest.fixture(scope="module")
def table(raw_phones, columns):
    features = raw_phones[FEATURES].to_numpy(dtype=np.float64)
    features = (features - features.mean(0)) / features.std(0)
    return (
        torch.from_numpy(features.astype(np.float32)),
        torch.from_numpy(raw_phones[columns["target"]].to_numpy(dtype=np.int64, copy=True)),
    )


def _rows(table, rows=ROWS, validation=40) -> list[tuple]:
    """(training features, labels, validation or None, seed) per member."""
    features, labels = table
    found, start = [], 0
    for k, n in enumerate(rows):
        fit, val = slice(start, start + n), slice(start + n, start + n + validation + k)
        held_out = (features[val], labels[val]) if validation else None
        found.append((features[fit], labels[fit], held_out, 11 + k))
        start += n + validation + k
    return found


def _members(data, model: ModelParams, names=False) -> list[Member]:
    """Each member's network as a plain training with its seed builds it."""
    members = []
    for k, (x, y, validation, seed) in enumerate(data):
        generator = seed_everything(seed)
        network = mlp_from_params(model)
        name = f"fold {k}" if names else "training"
        members.append(Member(network, x, y, generator, validation, name=name))
    return members


def _alone(data, model, training, gradients="auto"):
    """What the single-network path makes of each member: (history, state dict) each."""
    alone = training.model_copy(update={"gradients": gradients})
    results = []
    for member in _members(data, model):
        (history,) = train([member], alone)
        results.append((history, member.network.state_dict()))
    return results


def _assert_weights_match(expected: dict, actual: dict) -> None:
    assert list(actual) == list(expected)
    for key, value in expected.items():
        scale = value.abs().max().item()
        difference = (actual[key] - value).abs().max().item()
        assert difference <= 1e-5 * scale, f"{key}: differs by {difference} (max |w| {scale})"


CASES = {
    "adam": ({}, {}),
    "sgd_momentum": ({"optimizer": {"name": "SGD", "lr": 0.05, "momentum": 0.9}}, {}),
    "adam_l1": ({"l1_lambda": 1e-3}, {}),
    "sgd_momentum_l1": (
        {"optimizer": {"name": "SGD", "lr": 0.05, "momentum": 0.9}, "l1_lambda": 1e-3},
        {},
    ),
    "adam_dropout": ({}, {"dropout": 0.3}),
    "sgd_momentum_dropout": (
        {"optimizer": {"name": "SGD", "lr": 0.05, "momentum": 0.9}},
        {"dropout": 0.3},
    ),
    "adam_dropout_noise": (
        {"augmentation": {"name": "gaussian_noise", "std": 0.1}},
        {"dropout": 0.2},
    ),
    "adamw_amsgrad": ({"optimizer": {"name": "AdamW", "lr": 0.01, "amsgrad": True}}, {}),
    "sgd_nesterov_l2": (
        {
            "optimizer": {
                "name": "SGD",
                "lr": 0.05,
                "momentum": 0.9,
                "nesterov": True,
                "weight_decay": 1e-3,
            }
        },
        {},
    ),
    "adagrad": ({"optimizer": {"name": "Adagrad", "lr": 0.01}}, {}),
    # Not a fused kernel: the stack steps torch.optim's own loop over the members' rows.
    "rmsprop_l1_dropout": (
        {"optimizer": {"name": "RMSprop", "lr": 0.001}, "l1_lambda": 1e-3},
        {"dropout": 0.2},
    ),
    "adam_not_fused": ({"optimizer": {"name": "Adam", "lr": 0.01, "fused": False}}, {}),
}


@pytest.mark.parametrize("reference", ["auto", "autograd"])
@pytest.mark.parametrize("case", sorted(CASES))
def test_each_member_computes_what_it_computes_alone(table, case, reference):
    training_changes, model_changes = CASES[case]
    training = _training(**training_changes)
    model = SMALL.model_copy(update=model_changes)
    data = _rows(table)
    members = _members(data, model)
    histories = train(members, training)
    alone = _alone(data, model, training, reference)
    for member, stacked, (history, state) in zip(members, histories, alone, strict=True):
        _assert_weights_match(state, member.network.state_dict())
        assert list(stacked) == ["train_loss", "val_loss", "val_accuracy"]
        np.testing.assert_allclose(stacked["train_loss"], history["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(stacked["val_loss"], history["val_loss"], rtol=1e-5)
        rows = len(member.validation[1])
        np.testing.assert_allclose(
            stacked["val_accuracy"], history["val_accuracy"], atol=1.0 / rows
        )


def test_the_phone_network_matches_alone_and_loads_as_a_plain_mlp(table):
    model = ModelParams(input_dim=20, hidden_dims=[128, 256], n_classes=4)
    training = _training(epochs=2, optimizer={"name": "Adam", "lr": 1e-3})
    data = _rows(table, rows=[160, 161])
    members = _members(data, model)
    train(members, training)
    for member, (_, state) in zip(members, _alone(data, model, training), strict=True):
        _assert_weights_match(state, member.network.state_dict())
        network = load_mlp(member.network.state_dict(), model)
        expected = mlp_from_params(model)
        expected.load_state_dict(state)
        x = member.validation[0]
        torch.testing.assert_close(network(x), expected(x), rtol=1e-5, atol=1e-6)


def test_after_100_epochs_validation_accuracies_stay_within_one_row(table):
    training = _training(epochs=100, optimizer={"name": "Adam", "lr": 1e-3})
    model = ModelParams(input_dim=20, hidden_dims=[16, 8], n_classes=4, dropout=0.1)
    data = _rows(table, rows=[64, 65], validation=60)
    histories = train(_members(data, model), training)
    for (_, _, validation, _), stacked, (history, _) in zip(
        data, histories, _alone(data, model, training, "autograd"), strict=True
    ):
        assert len(stacked["val_accuracy"]) == 100
        np.testing.assert_allclose(
            stacked["val_accuracy"], history["val_accuracy"], atol=1.0 / len(validation[1])
        )


@pytest.mark.parametrize(
    "config",
    [
        {"name": "Adam", "lr": 0.01},
        {"name": "AdamW", "lr": 0.01, "weight_decay": 0.1, "amsgrad": True},
        {"name": "SGD", "lr": 0.1, "momentum": 0.9, "nesterov": True},
        {"name": "SGD", "lr": 0.1},
        {"name": "RMSprop", "lr": 0.01},
    ],
)
@pytest.mark.parametrize("groups", [1, 2])
def test_the_stacked_step_is_torch_optims_step_per_member(config, groups):
    """Three members, one of which sits out some steps (its fold ran out of batches); with
    two parameter groups, the second at a tenth of the learning rate (transfer's
    fine-tuning). The tensors' sizes put some in the flat rows and some on their own."""
    torch.manual_seed(0)
    shapes = [(16, 4), (8,), (3, 16), (3,)]
    initial = [torch.randn(3, *shape) for shape in shapes]
    alone = [[t[k].clone() for t in initial] for k in range(3)]
    typed = OptimizerParams.model_validate(config)
    if groups == 1:
        layout, grouped = [({}, [0, 1, 2, 3])], lambda params: params
    else:
        layout = [({}, [0, 1]), ({"lr": config["lr"] / 10}, [2, 3])]

        def grouped(params):
            return [{"params": params[:2]}, {"params": params[2:], "lr": config["lr"] / 10}]

    stacked = StackedParameters(initial, layout, typed)
    alone_optimizers = [build_optimizer(grouped(params), typed) for params in alone]
    _step_both(stacked, alone, alone_optimizers, sitting_out={2: (0, 2), 4: (0, 2)}, steps=6)
    for k in range(3):
        for t, param in zip(stacked.values, alone[k], strict=True):
            torch.testing.assert_close(t[k], param, rtol=1e-6, atol=1e-7)


def _step_both(stacked, alone, optimizers, sitting_out, steps):
    """Random gradients, stepped by the stack and by each member's own optimizer; at step
    i only the members ``sitting_out[i]`` names take part."""
    for step in range(steps):
        active = sitting_out.get(step)
        for g in stacked.grads:
            g.copy_(torch.randn_like(g))
        stacked.step(active)
        for k in active or range(len(alone)):
            for param, g in zip(alone[k], stacked.grads, strict=True):
                param.grad = g[k].clone()
            optimizers[k].step()


@pytest.mark.parametrize("name", ["SGD", "Adam", "AdamW", "Adagrad", "RMSprop", "NAdam", "Rprop"])
def test_optimizers_that_update_each_element_on_its_own_are_stacked(name):
    assert stacking_refusal(OptimizerParams(name=name, lr=0.01)) is None


@pytest.mark.parametrize(
    ("name", "reason"),
    [("LBFGS", "LBFGS cannot step tensors on their own"), ("SparseAdam", "SparseAdam cannot")],
)
def test_optimizers_that_couple_or_need_sparse_gradients_are_not(name, reason):
    assert reason in stacking_refusal(OptimizerParams(name=name, lr=0.01))


def test_on_epoch_sees_the_members_mean_and_stops_them_all(table):
    seen = []

    def on_epoch(epoch: int, mean: float) -> bool:
        seen.append((epoch, mean))
        return epoch == 1

    histories = train(_members(_rows(table), SMALL), _training(epochs=5), on_epoch=on_epoch)
    assert [epoch for epoch, _ in seen] == [0, 1]
    for epoch, mean in seen:
        assert mean == float(np.mean([h["val_accuracy"][epoch] for h in histories]))
    assert all(len(h["train_loss"]) == 2 for h in histories)


def test_members_without_validation_rows_train_as_a_single_network_without_them(table):
    data = _rows(table, [97, 81], validation=0)
    seen = []
    members = _members(data, SMALL)
    histories = train(members, _training(), on_epoch=lambda e, m: seen.append(m))
    assert len(seen) == 3 and all(np.isnan(seen))
    for member, stacked, (history, state) in zip(
        members, histories, _alone(data, SMALL, _training(), "autograd"), strict=True
    ):
        assert list(stacked) == list(history) == ["train_loss"]
        np.testing.assert_allclose(stacked["train_loss"], history["train_loss"], rtol=1e-5)
        _assert_weights_match(state, member.network.state_dict())


def _with(member: Member, **changes) -> Member:
    fields = ("network", "features", "labels", "generator", "validation", "parameters", "name")
    return Member(**{field: getattr(member, field) for field in fields} | changes)


def test_a_diverging_loss_is_an_error_naming_the_member(table):
    members = _members(_rows(table), SMALL, names=True)
    # Features of 1e38 overflow the first layer to inf: that member's loss is NaN at once.
    members[1] = _with(members[1], features=members[1].features * 1e38)
    with pytest.raises(FloatingPointError, match=r"fold 1: the training loss is nan at epoch 0"):
        train(members, _training())


def test_a_single_training_stops_at_a_diverging_loss_too(table):
    (member,) = _members(_rows(table, [97]), SMALL)
    with pytest.raises(FloatingPointError, match=r"training: the training loss is \w+ at epoch"):
        train([member], _training(optimizer={"name": "SGD", "lr": 1e12}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            lambda m: _with(m, features=m.features[:, :19]),
            r"member 1: the training features have 19 columns but the network takes 20",
        ),
        (
            lambda m: _with(m, validation=(m.validation[0][:0], m.validation[1][:0])),
            r"member 1: the validation features are empty",
        ),
        (
            lambda m: _with(m, features=m.features[:0], labels=m.labels[:0]),
            r"member 1: the training features are empty",
        ),
        (
            lambda m: _with(m, labels=m.labels + 4),
            r"member 1: training labels must lie in \[0, 4\) \(the network's outputs\)",
        ),
        (
            lambda m: _with(m, features=m.features.double()),
            r"member 1: training features must be float32",
        ),
    ],
)
def test_bad_members_are_named(table, change, message):
    members = _members(_rows(table), SMALL)
    members[1] = change(members[1])
    with pytest.raises(ValueError, match=message):
        train(members, _training())


def test_an_optimizer_the_stack_cannot_share_is_named(table, caplog):
    members = _members(_rows(table), SMALL)
    lbfgs = {"name": "LBFGS", "lr": 0.5, "max_iter": 2}
    with pytest.raises(StackingUnsupported, match=r"training.optimizer.name: LBFGS cannot"):
        train(members, _training(gradients="manual", optimizer=lbfgs))
    with caplog.at_level(logging.INFO, logger="neural_net_lab.engine"):
        histories = train(members, _training(epochs=1, optimizer=lbfgs))
    assert (
        "3 networks: trained through autograd, not stacked: training.optimizer.name: LBFGS"
        in caplog.text
    )
    assert "(autograd gradients)" in caplog.text
    assert len(histories) == 3


def test_cross_validation_stacks_its_folds_by_default_with_the_same_results(raw_phones, columns):
    rows = raw_phones.sample(300, random_state=0)
    features = rows[FEATURES].to_numpy(dtype=float)
    labels = rows[columns["target"]].to_numpy()
    folds = list(StratifiedKFold(3, shuffle=True, random_state=1).split(features, labels))
    model = SMALL.model_copy(update={"dropout": 0.2})
    training = _training(l1_lambda=1e-4)
    stacked = cross_validate(features, labels, folds, model, training)
    alone = cross_validate(features, labels, folds, model, training, stacked=False)
    for mine, theirs in zip(stacked.histories, alone.histories, strict=True):
        np.testing.assert_allclose(mine["train_loss"], theirs["train_loss"], rtol=1e-5)
        np.testing.assert_allclose(mine["val_accuracy"], theirs["val_accuracy"], atol=1 / 100)
    assert (stacked.epochs_run, stacked.stopped) == (alone.epochs_run, alone.stopped) == (3, False)


@pytest.mark.parametrize(
    "config",
    [
        {"name": "Adam", "lr": 0.01},
        {"name": "Adam", "lr": 0.01, "weight_decay": 0.1, "amsgrad": True, "maximize": True},
        {"name": "Adam", "lr": 0.01, "betas": [0.8, 0.99], "fused": False, "foreach": False},
    ],
)
def test_adam_steps_a_stack_as_adams_own_step_to_the_bit(config):
    """``AdamSteps`` calls the function ``Adam.step()`` calls: the same numbers, bit for bit,
    after steps where a member sits out, whatever the settings choose (fused, the plain
    loop, AMSGrad)."""
    torch.manual_seed(0)
    shapes = [(16, 4), (16,), (3, 16), (3,)]
    initial = [torch.randn(2, *shape) for shape in shapes]
    typed = OptimizerParams.model_validate(config)
    stacked = StackedParameters(initial, [({}, [0, 1, 2, 3])], typed)
    assert stacked.adam_steps is not None  # the functional path is what is tested
    alone = [[t[k].clone() for t in initial] for k in range(2)]
    optimizers = [build_optimizer(params, typed) for params in alone]
    _step_both(stacked, alone, optimizers, sitting_out={2: (1,)}, steps=5)
    for k in range(2):
        for t, param in zip(stacked.values, alone[k], strict=True):
            assert torch.equal(t[k], param)
