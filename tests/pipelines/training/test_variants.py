"""training: the variant-block checks shared by the optimizers and regularization experiments,
and the variant template's node naming its parameter block."""

from __future__ import annotations

import pytest
import yaml

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.variants import check_variant_blocks, train_variant, variant_pipeline
from tests.conftest import PROJECT_ROOT, with_setting

OPTIMIZERS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_optimizers.yml").read_text())[
    "optimizers"
]
DEFAULTS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_training.yml").read_text())
DEFAULT_MODEL = ModelParams.model_validate(DEFAULTS["model"])
DEFAULT_TRAINING = TrainingParams.model_validate(DEFAULTS["training"])


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        (
            "adam.training.optimizer.name",
            "Adamm",
            r"optimizers\.adam\.training\.optimizer\.name: unknown optimizer 'Adamm'",
        ),
        (
            "sgd.training.optimizer.lr",
            -0.1,
            r"optimizers\.sgd\.training\.optimizer\.lr: must be > 0, got -0.1",
        ),
        (
            "sgd_momentum.training.optimizer.momentun",
            0.9,
            r"optimizers\.sgd_momentum\.training\.optimizer\.momentun: SGD has no setting",
        ),
        # Only the optimizer's constructor refuses these: it is built once on a dummy tensor.
        (
            "adam.training.optimizer.betas",
            [1.5, 0.999],
            r"optimizers\.adam\.training\.optimizer: Adam refused its settings: Invalid beta",
        ),
        (
            "rmsprop.training.epochs",
            0,
            r"optimizers\.rmsprop\.training\.epochs: must be >= 1, got 0",
        ),
        (
            "adam.name",
            "adagrad",
            r"optimizers\.adam\.name: 'adagrad' is already the name of optimizers\.adagrad",
        ),
        (
            "adam.model.hiden_dims",
            [8],
            r"optimizers\.adam\.model\.hiden_dims: unknown setting \(a typo\?\)",
        ),
        ("sgd.training", 0.1, r"optimizers\.sgd\.training: must be a block of settings, got 0.1"),
        # Every key under `optimizers` is a variant: report settings are refused by name.
        (
            "report",
            {"target_val_accuracy": 0.9},
            r"optimizers\.report\.name: is required(.|\n)*"
            r"optimizers\.report\.target_val_accuracy: unknown setting",
        ),
        (
            "target_val_accuracy",
            0.9,
            r"optimizers\.target_val_accuracy: must be a block of settings",
        ),
    ],
)
def test_a_bad_optimizer_block_is_named(path, value, message):
    with pytest.raises(ParameterError, match=message):
        variants = with_setting(OPTIMIZERS, path, value)
        check_variant_blocks("optimizers", variants, DEFAULT_MODEL, DEFAULT_TRAINING)


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        (
            {"l1": {"name": "l1", "training": {"l1_lambda": -1}}},
            r"regularization\.l1\.training\.l1_lambda: must be >= 0, got -1",
        ),
        (
            {"d": {"name": "d", "model": {"dropout": 1.5}}},
            r"regularization\.d\.model\.dropout: must be < 1, got 1.5",
        ),
        (
            {"a": {"name": "a", "training": {"augmentation": {"name": "mixup"}}}},
            r"regularization\.a\.training\.augmentation\.name: must be one of 'gaussian_noise'",
        ),
        (
            {"w": {"name": "w", "training": {"optimizer": {"weight_decay": "x"}}}},
            r"regularization\.w\.training\.optimizer\.weight_decay: must be a number, got 'x'",
        ),
        # Only the merge with the defaults shows this: Adam (the default) has no momentum.
        (
            {"m": {"name": "m", "training": {"optimizer": {"momentum": 0.9}}}},
            r"regularization\.m\.training\.optimizer\.momentum: Adam has no setting",
        ),
        ({"x": {"name": "x", "lambda": 1}}, r"regularization\.x\.lambda: unknown setting"),
        ({"x": {"training": {}}}, r"regularization\.x\.name: is required"),
        ({"x": {"name": "y"}, "z": {"name": "y"}}, r"regularization\.z\.name: 'y' is already"),
    ],
)
def test_a_bad_regularization_block_is_named(variants, message, small_model, small_training):
    with pytest.raises(ValueError, match=message):
        check_variant_blocks("regularization", variants, small_model, small_training)


def test_an_experiment_without_blocks_is_refused(small_model, small_training):
    with pytest.raises(ValueError, match=r"parameters 'regularization' must hold one block"):
        check_variant_blocks("regularization", {}, small_model, small_training)


def test_blocks_give_each_run_name_its_merged_settings():
    checked = check_variant_blocks("optimizers", OPTIMIZERS, DEFAULT_MODEL, DEFAULT_TRAINING)
    assert list(checked) == [block["name"] for block in OPTIMIZERS.values()]
    for block in OPTIMIZERS.values():
        model_cfg, training_cfg = checked[block["name"]]
        assert model_cfg.dump() == DEFAULTS["model"]
        # A new optimizer name replaces the default optimizer block whole (no Adam betas on SGD).
        assert training_cfg.optimizer.dump() == block["training"]["optimizer"]
        assert training_cfg.epochs == DEFAULTS["training"]["epochs"]


def test_train_variant_names_its_parameter_block_before_training(
    model_inputs, table_schema, small_model, small_training
):
    tables = (model_inputs["fit_set"], model_inputs["validation_set"], model_inputs["test_set"])
    blocks = small_model, small_training
    # The template's node passes its block's path: `--nodes` runs skip the experiment's check.
    (node,) = variant_pipeline("demo", "a").nodes
    assert node.name == "demo.a.train_variant"
    assert node.func.__name__ == "train_variant"
    typed = node.func.__annotations__["variant"]  # what Kedro validates the block as
    with pytest.raises(ParameterError, match=r"^demo\.a\.lambda: unknown setting"):
        typed.model_validate({"name": "x", "lambda": 1})
    block = typed.model_validate({"name": "a", "training": {"optimizer": {"nesterov": True}}})
    with pytest.raises(ParameterError, match=r"^variant\.training\.optimizer\.nesterov: Adam"):
        train_variant(*tables, *blocks, block, table_schema)
    with pytest.raises(ParameterError, match=r"^demo\.a\.training\.optimizer\.nesterov: Adam has"):
        node.func(*tables, *blocks, block, table_schema)
