"""training: the variant-block checks shared by the optimizers and regularization experiments,
and the variant template's node naming its parameter block."""

from __future__ import annotations

import copy

import pytest
import yaml

from neural_net_lab.pipelines.training.nodes import check_variant_blocks, train_variant
from neural_net_lab.pipelines.training.pipeline import variant_pipeline
from tests.conftest import PROJECT_ROOT

OPTIMIZERS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_optimizers.yml").read_text())[
    "optimizers"
]
DEFAULTS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_training.yml").read_text())
MODEL = {"input_dim": 20, "hidden_dims": [16], "n_classes": 4}
TRAINING = {"seed": 0, "epochs": 2, "batch_size": 16, "validation_share": 0.1,
            "optimizer": {"name": "Adam", "lr": 0.003}, "l1_lambda": 0.0, "augmentation": None,
            "progress": False}  # fmt: skip


def _shipped_optimizers_with(path: str, value):
    """The shipped optimizer blocks with one setting changed (dotted path)."""
    variants = copy.deepcopy(OPTIMIZERS)
    *parents, leaf = path.split(".")
    node = variants
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return variants


@pytest.mark.parametrize(
    ("path", "value", "message"),
    [
        ("adam.training.optimizer.name", "Adamm", r"optimizers\.adam\.training\.optimizer\.name: unknown optimizer 'Adamm'"),
        ("sgd.training.optimizer.lr", -0.1, r"optimizers\.sgd\.training\.optimizer\.lr must be a positive number"),
        ("sgd_momentum.training.optimizer.momentun", 0.9, r"optimizers\.sgd_momentum\.training\.optimizer\.momentun: SGD has no setting"),
        # Only the optimizer's constructor refuses these: the check builds it once.
        ("adam.training.optimizer.betas", [1.5, 0.999], r"optimizers\.adam\.training\.optimizer: Adam\(.*\) was refused"),
        ("rmsprop.training.epochs", 0, r"optimizers\.rmsprop\.training\.epochs must be a positive integer"),
        ("adam.name", "adagrad", r"optimizers\.adam\.name: 'adagrad' is already the name of optimizers\.adagrad"),
        ("adam.model.hiden_dims", [8], r"optimizers\.adam\.model: unknown model parameter\(s\) \['hiden_dims'\]"),
        ("sgd.training", 0.1, r"optimizers\.sgd\.training must be a mapping of overrides"),
        # Every key under `optimizers` is a variant: report settings are refused by name.
        ("report", {"target_val_accuracy": 0.9}, r"optimizers\.report: unknown key\(s\) \['target_val_accuracy'\].*'optimizers_report'"),
        ("target_val_accuracy", 0.9, r"optimizers\.target_val_accuracy must be a variant block.*'optimizers_report'"),
    ],
)  # fmt: skip
def test_a_bad_optimizer_block_is_named(path, value, message):
    with pytest.raises(ValueError, match=message):
        variants = _shipped_optimizers_with(path, value)
        check_variant_blocks("optimizers", variants, DEFAULTS["model"], DEFAULTS["training"])


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        ({"l1": {"name": "l1", "training": {"l1_lambda": -1}}}, r"regularization\.l1\.training\.l1_lambda"),
        ({"d": {"name": "d", "model": {"dropout": 1.5}}}, r"regularization\.d\.model: .*dropout"),
        ({"a": {"name": "a", "training": {"augmentation": {"name": "mixup"}}}}, r"regularization\.a\.training\.augmentation"),
        ({"w": {"name": "w", "training": {"optimizer": {"weight_decay": "x"}}}}, r"regularization\.w\.training\.optimizer\.weight_decay"),
        ({"x": {"name": "x", "lambda": 1}}, r"regularization\.x: unknown key\(s\) \['lambda'\]"),
        ({"x": {"training": {}}}, r"regularization\.x\.name"),
        ({"x": {"name": "y"}, "z": {"name": "y"}}, r"regularization\.z\.name: 'y' is already"),
        ({}, r"parameters 'regularization' must hold one block per variant"),
        # Every key under `regularization` is a variant: report settings are refused by name.
        ({"report": {"near_zero_threshold": 1e-3}}, r"regularization\.report: unknown key\(s\) \['near_zero_threshold'\].*'regularization_report'"),
        ({"near_zero_threshold": 1e-3}, r"regularization\.near_zero_threshold must be a variant block.*'regularization_report'"),
    ],
)  # fmt: skip
def test_a_bad_regularization_block_is_named(variants, message):
    with pytest.raises(ValueError, match=message):
        check_variant_blocks("regularization", variants, MODEL, TRAINING)


def test_blocks_give_each_run_name_its_merged_settings():
    checked = check_variant_blocks(
        "optimizers", OPTIMIZERS, DEFAULTS["model"], DEFAULTS["training"]
    )
    assert list(checked) == [block["name"] for block in OPTIMIZERS.values()]
    for block in OPTIMIZERS.values():
        model_cfg, training_cfg = checked[block["name"]]
        assert model_cfg == DEFAULTS["model"]
        # A new optimizer name replaces the default optimizer block whole (no Adam betas on SGD).
        assert training_cfg["optimizer"] == block["training"]["optimizer"]
        assert training_cfg["epochs"] == DEFAULTS["training"]["epochs"]


def test_train_variant_names_its_parameter_block_before_training(model_inputs, columns):
    tables = (model_inputs["fit_set"], model_inputs["validation_set"], model_inputs["test_set"])
    bad = {"name": "x", "lambda": 1}
    with pytest.raises(ValueError, match=r"^variant: unknown key\(s\) \['lambda'\]"):
        train_variant(*tables, MODEL, TRAINING, bad, columns)
    with pytest.raises(ValueError, match=r"^regularization\.x: unknown key\(s\) \['lambda'\]"):
        train_variant(*tables, MODEL, TRAINING, bad, columns, where="regularization.x")
    # The template's node passes its block's path: `--nodes` runs skip the experiment's check.
    (node,) = variant_pipeline("demo", "a").nodes
    assert node.name == "demo.a.train_variant"
    assert node.func.__name__ == "train_variant"
    with pytest.raises(ValueError, match=r"^demo\.a\.training\.epochs must be a positive integer"):
        node.func(*tables, MODEL, TRAINING, {"name": "a", "training": {"epochs": 0}}, columns)
