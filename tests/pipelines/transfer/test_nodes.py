"""transfer nodes on real data: the shipped new-market table, standardized with the scaler of
the shipped phone table, and a source network trained on it for a few epochs."""

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pandas as pd
import pytest
import torch
import yaml

from neural_net_lab.data_generation import generate_new_market
from neural_net_lab.engine.config import OptimizerParams
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.engine.fit import fit_classifier
from neural_net_lab.engine.model import mlp_from_params
from neural_net_lab.engine.optim import build_optimizer
from neural_net_lab.pipelines.transfer.market import (
    draw_learning_curve,
    split_new_market,
    validate_new_market,
)
from neural_net_lab.pipelines.transfer.nodes import fit_strategy
from neural_net_lab.pipelines.transfer.params import StrategyParams, TransferParams
from neural_net_lab.pipelines.transfer.surgery import (
    build_target_network,
    parameter_groups,
    prepare_source_model,
)
from neural_net_lab.table import DataValidationError, standardize
from tests.conftest import PROJECT_ROOT

SHIPPED = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_transfer.yml").read_text())
TRANSFER = TransferParams.model_validate(SHIPPED["transfer"])
FREEZE = StrategyParams(name="freeze", init="pretrained", freeze=True)
FINETUNE = StrategyParams(name="finetune", init="pretrained", hidden_lr_factor=0.1)
SCRATCH = StrategyParams(name="scratch", init="random")
HEAD = "4."  # Linear, LeakyReLU, Linear, LeakyReLU, head


@pytest.fixture(scope="module")
def architecture(small_model):
    """The shipped widths: the shapes in the assertions below name them."""
    return small_model.model_copy(update={"hidden_dims": [128, 256]})


@pytest.fixture(scope="module")
def training(small_training):
    """Seed 42 and Adam at 1e-3 for three epochs: the seeds and step sizes the tests below
    work out."""
    adam = OptimizerParams(name="Adam", lr=0.001)
    return small_training.model_copy(update={"seed": 42, "epochs": 3, "optimizer": adam})


@pytest.fixture(scope="module")
def columns(table_schema):
    """The source table's schema (the shipped phone table)."""
    return table_schema


@pytest.fixture(scope="module")
def source_state(model_inputs, columns, architecture, training) -> dict[str, torch.Tensor]:
    """A source network trained for a few epochs on the shipped phone table."""
    tables = model_inputs["fit_set"], model_inputs["validation_set"]
    model, _, _ = fit_classifier(
        *tables, architecture, training.model_copy(update={"epochs": 2}), columns
    )
    return model.state_dict()


@pytest.fixture(scope="module")
def new_market(model_inputs, columns) -> dict[str, Any]:
    """The shipped new-market table, split and standardized with the SOURCE scaler, and its
    schema (the source's inputs, its own classes)."""
    raw = pd.read_csv(PROJECT_ROOT / "data/01_raw/phone_prices_new_market.csv")
    validated, schema = validate_new_market(raw, columns, TRANSFER)
    train, test = split_new_market(validated, schema, TRANSFER)
    scaler = model_inputs["scaler"]
    return {
        "train": standardize(train, scaler, schema),
        "test": standardize(test, scaler, schema),
        "schema": schema,
    }


@pytest.fixture(scope="module")
def target_columns(new_market):
    """The new market's schema."""
    return new_market["schema"]


@pytest.fixture(scope="module")
def target_model(architecture, target_columns):
    """The source architecture with a head of the new market's classes."""
    return target_columns.network(architecture.model_copy(update={"n_classes": None}))


def test_new_market_schema_has_the_source_inputs_and_its_own_classes(columns, target_columns):
    assert target_columns.inputs == columns.inputs and target_columns.target == columns.target
    assert target_columns.classes == TRANSFER.target.classes == [0, 1, 2]


def test_new_market_without_the_source_features_is_refused(columns):
    raw = pd.read_csv(PROJECT_ROOT / "data/01_raw/phone_prices_new_market.csv")
    with pytest.raises(DataValidationError, match=r"lacks 1 of its feature column\(s\) \['ram'\]"):
        validate_new_market(raw.drop(columns="ram"), columns, TRANSFER)


def test_shipped_new_market_table_is_the_generators_default_output():
    shipped = pd.read_csv(PROJECT_ROOT / "data/01_raw/phone_prices_new_market.csv")
    pd.testing.assert_frame_equal(shipped, generate_new_market())


def test_new_market_has_three_balanced_tiers_and_another_price_relation(raw_phones):
    new = generate_new_market()
    assert new["price_range"].value_counts().sort_index().tolist() == [167, 167, 166]
    # Internal memory sets no price in the main market and a clear one in the new market.
    assert abs(raw_phones["int_memory"].corr(raw_phones["price_range"])) < 0.1
    assert new["int_memory"].corr(new["price_range"]) > 0.15
    assert not generate_new_market(seed=8).equals(new)


def test_source_model_loses_its_head(source_state, columns, architecture):
    pretrained = prepare_source_model(source_state, architecture, columns)
    assert sorted(pretrained) == ["0.bias", "0.weight", "2.bias", "2.weight"]
    for key, value in pretrained.items():
        assert torch.equal(value, source_state[key])


def test_source_model_of_another_input_width_is_refused(columns, architecture):
    narrow = architecture.model_copy(update={"input_dim": 12})
    state = mlp_from_params(narrow).state_dict()
    with pytest.raises(ValueError, match=r"model\.input_dim: is 12 but .* gives 20 \(20 numeric"):
        prepare_source_model(state, narrow, columns)
    # The parameters describe 20 inputs, the saved weights take 12: load_mlp names the shape.
    with pytest.raises(ValueError, match=r"0\.weight: saved \(128, 12\) vs model \(128, 20\)"):
        prepare_source_model(state, architecture, columns)


def test_source_model_of_another_architecture_is_refused(columns, architecture):
    state = mlp_from_params(architecture.model_copy(update={"hidden_dims": [64]})).state_dict()
    with pytest.raises(
        ValueError, match=r"missing \['4\.bias', '4\.weight'\].*2\.weight: saved \(4, 64\)"
    ):
        prepare_source_model(state, architecture, columns)


def test_freezing_keeps_pretrained_weights_bit_identical_and_trains_the_head(
    source_state, new_market, columns, target_columns, target_model, architecture, training
):
    pretrained = prepare_source_model(source_state, architecture, columns)
    torch.manual_seed(42)  # fit_strategy seeds with training.seed before drawing the head
    before = build_target_network(pretrained, target_model, FREEZE).state_dict()
    head_before = {k: v for k, v in before.items() if k.startswith(HEAD)}
    model, history, _ = fit_strategy(
        new_market["train"],
        pretrained,
        model=target_model,
        training=training,
        strategy=FREEZE,
        schema=target_columns,
        seed=42,
    )
    state = model.state_dict()
    for key, value in pretrained.items():
        assert torch.equal(state[key], value), key
        assert not dict(model.named_parameters())[key].requires_grad
    assert state[f"{HEAD}weight"].shape == (3, 256)
    for key, value in head_before.items():
        assert not torch.equal(state[key], value), key
    assert history["train_loss"][-1] < history["train_loss"][0]


def test_finetuning_moves_pretrained_layers_and_scratch_ignores_them(
    source_state, new_market, columns, target_columns, target_model, architecture, training
):
    pretrained = prepare_source_model(source_state, architecture, columns)
    fit = dict(
        model=target_model,
        training=training.model_copy(update={"epochs": 1}),
        schema=target_columns,
        seed=42,
    )
    tuned = fit_strategy(new_market["train"], pretrained, strategy=FINETUNE, **fit)[0].state_dict()
    assert all(not torch.equal(tuned[k], v) for k, v in pretrained.items() if k.endswith("weight"))
    # 19 Adam steps at the hidden layers' lr 1e-4 move no weight by more than a few 1e-3.
    assert max((tuned[k] - v).abs().max().item() for k, v in pretrained.items()) < 0.01
    scratch = build_target_network(pretrained, target_model, SCRATCH).state_dict()
    assert all(
        not torch.equal(scratch[k], v) for k, v in pretrained.items() if k.endswith("weight")
    )


def test_parameter_groups_carry_their_learning_rates(
    source_state, new_market, columns, target_columns, target_model, architecture, training
):
    pretrained = prepare_source_model(source_state, architecture, columns)
    model = build_target_network(pretrained, target_model, FINETUNE)
    optimizer = build_optimizer(
        parameter_groups(model, 0.01, 0.1), OptimizerParams(name="Adam", lr=0.01)
    )
    hidden, head = optimizer.param_groups
    assert hidden["lr"] == pytest.approx(0.001) and head["lr"] == 0.01
    parameters = dict(model.named_parameters())
    assert {id(p) for p in hidden["params"]} == {id(parameters[k]) for k in pretrained}
    assert {id(p) for p in head["params"]} == {id(parameters[HEAD + k]) for k in ("weight", "bias")}

    # One full-batch SGD step through the training loop: each update is -lr × gradient of its group.
    sgd = training.model_copy(
        update={"optimizer": OptimizerParams(name="SGD", lr=0.5), "epochs": 1, "batch_size": 10_000}
    )
    model, _, _ = fit_strategy(
        new_market["train"],
        pretrained,
        model=target_model,
        training=sgd,
        strategy=FINETUNE,
        schema=target_columns,
        seed=42,
    )
    torch.manual_seed(42)
    start = build_target_network(pretrained, target_model, FINETUNE).state_dict()
    for name, parameter in model.named_parameters():
        lr = 0.5 if name.startswith(HEAD) else 0.05
        torch.testing.assert_close(parameter.detach() - start[name], -lr * parameter.grad)


def test_freezing_leaves_frozen_layers_out_of_the_optimizer(
    source_state, columns, architecture, target_model
):
    model = build_target_network(
        prepare_source_model(source_state, architecture, columns), target_model, FREEZE
    )
    (head,) = parameter_groups(model, 0.01, 0.1)
    assert [p.shape for p in head["params"]] == [(3, 256), (3,)]


def test_learning_curve_subsets_are_nested_stratified_and_repeatable(new_market, target_columns):
    train, columns = new_market["train"], target_columns
    curve = {"sizes": [25, 50, 100, 200], "repeats": 2, "seed": 0}
    transfer = TransferParams.model_validate({**TRANSFER.dump(), "learning_curve": curve})
    points = draw_learning_curve(train, columns, transfer)
    assert points == draw_learning_curve(train, columns, transfer)
    assert [(p["rows"], p["repeat"]) for p in points] == [
        (rows, repeat) for rows in (25, 50, 100, 200, len(train)) for repeat in (0, 1)
    ]
    for repeat in (0, 1):
        subsets = [set(p["index"]) for p in points if p["repeat"] == repeat]
        assert all(small < large for small, large in zip(subsets, subsets[1:]))
        labels = train[columns.target].to_numpy()[sorted(subsets[1])]
        assert np.bincount(labels).tolist() in ([17, 17, 16], [17, 16, 17], [16, 17, 17])
    first = [set(p["index"]) for p in points if p["rows"] == 25]
    assert first[0] != first[1]


def _transfer_with(path: str, value) -> dict:
    """The shipped transfer block with one setting changed (dotted path)."""
    block = copy.deepcopy(SHIPPED["transfer"])
    *parents, leaf = path.split(".")
    node = block
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return block


def test_learning_curve_larger_than_the_table_is_named(new_market, target_columns):
    transfer = TransferParams.model_validate(_transfer_with("learning_curve.sizes", [25, 1000]))
    with pytest.raises(ParameterError, match=r"sizes must be row counts between 3 .* and 300"):
        draw_learning_curve(new_market["train"], target_columns, transfer)


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("learning_curve.repeats", 0, r"^transfer\.learning_curve\.repeats: must be >= 1, got 0$"),
        (
            "strategies.freeze.init",
            "imagenet",
            r"^transfer\.strategies\.freeze\.init: must be one of 'pretrained' or 'random'",
        ),
        (
            "strategies.finetune.hidden_lr_factor",
            0,
            r"^transfer\.strategies\.finetune\.hidden_lr_factor: must be > 0, got 0$",
        ),
        ("strategies.scratch.lr", 0.1, r"^transfer\.strategies\.scratch\.lr: unknown setting"),
        ("training.optimizer.lr", -1, r"^transfer\.training\.optimizer\.lr: must be > 0, got -1"),
        (
            "strategies.warmup",
            {"name": "warmup", "init": "random"},
            r"^transfer\.strategies: the pipeline runs \['freeze', 'finetune', 'scratch'\]",
        ),
    ],
)
def test_bad_transfer_setting_is_named(path, value, message):
    with pytest.raises(ParameterError, match=message):
        TransferParams.model_validate(_transfer_with(path, value))
