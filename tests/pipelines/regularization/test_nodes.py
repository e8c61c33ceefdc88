"""regularization: the engine's L1 term, dropout and augmentation, and the report nodes."""

from __future__ import annotations

import copy
import math

import pandas as pd
import pytest
import torch
from torch.nn import functional as F

from neural_net_lab.engine.augmentation import build_augmentation
from neural_net_lab.engine.config import AugmentationParams, TrainingParams
from neural_net_lab.engine.data import predict_logits
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.engine.model import build_mlp
from neural_net_lab.engine.overrides import VariantParams
from neural_net_lab.engine.reference import evaluate
from neural_net_lab.engine.training import Member, train
from neural_net_lab.pipelines.regularization.nodes import (
    compare_variants,
    dropout_demonstration,
    l1_norm,
    near_zero_share,
    plan_variants,
    report_markdown,
    select_by_validation,
    weight_matrices,
)
from neural_net_lab.pipelines.regularization.params import (
    DropoutDemoParams,
    RegularizationReportParams,
)
from neural_net_lab.variants import train_variant

DEMO = DropoutDemoParams(seed=0, shape=[5, 6], low=1, high=10, p=0.5)
REPORT = RegularizationReportParams(near_zero_threshold=1e-3)


def _training(gradients: str, optimizer: str, lr: float, **settings) -> TrainingParams:
    return TrainingParams.model_validate(
        {"seed": 0, "optimizer": {"name": optimizer, "lr": lr}, "gradients": gradients}
        | {"progress": False}
        | settings
    )


def _tiny_problem(rows: int = 8) -> tuple[torch.nn.Sequential, torch.Tensor, torch.Tensor]:
    torch.manual_seed(0)
    model = build_mlp(3, [4], 2)
    with torch.no_grad():
        model[0].weight[0, 0] = 0.0  # sign(0) = 0: the penalty must leave it alone
    return model, torch.randn(rows, 3), torch.randint(0, 2, (rows,))


def test_l1_value_is_lambda_times_absolute_weights_without_biases():
    model, _, _ = _tiny_problem()
    with torch.no_grad():
        model[0].bias.fill_(5.0)  # biases are not penalised: they must not count
    lam = 0.001
    by_hand = lam * sum(
        abs(w) for layer in (model[0], model[2]) for row in layer.weight.tolist() for w in row
    )
    state = model.state_dict()
    assert [t.shape for t in weight_matrices(state)] == [(4, 3), (2, 4)]
    assert lam * l1_norm(weight_matrices(state)) == pytest.approx(by_hand, rel=1e-6)


@pytest.mark.parametrize("gradients", ["manual", "autograd"])
def test_engine_l1_step_adds_lambda_sign_w_to_weight_gradients_only(gradients):
    """One full-batch SGD step (lr 1) against a hand computation: W − (∇CE + λ·sign(W))."""
    start, features, labels = _tiny_problem()
    lam = 0.05  # large enough to dominate float rounding
    reference = copy.deepcopy(start)
    F.cross_entropy(reference(features), labels).backward()
    expected = {
        name: param.detach()
        - param.grad
        - (lam * torch.sign(param.detach()) if name.endswith("weight") else 0)
        for name, param in reference.named_parameters()
    }
    histories = {}
    for l1_lambda in (0.0, lam):
        model = copy.deepcopy(start)
        settings = {"epochs": 1, "batch_size": len(features), "l1_lambda": l1_lambda}
        member = Member(model, features, labels, torch.Generator().manual_seed(0))
        (histories[l1_lambda],) = train([member], _training(gradients, "SGD", 1.0, **settings))
    for name, param in model.named_parameters():
        torch.testing.assert_close(param.detach(), expected[name], rtol=0, atol=1e-6, msg=name)
    assert model[0].weight[0, 0].item() == pytest.approx(expected["0.weight"][0, 0].item())
    # The reported loss is the cross-entropy alone, so that variants compare.
    assert histories[lam]["train_loss"] == pytest.approx(histories[0.0]["train_loss"], rel=1e-6)


def test_dropout_demo_zeroes_and_scales_in_train_mode_and_is_identity_in_eval():
    rng_before = torch.get_rng_state()
    demo = dropout_demonstration(DEMO)
    assert torch.equal(torch.get_rng_state(), rng_before)  # the global generator is left as it was
    values, train_mode = torch.tensor(demo["input"]), torch.tensor(demo["train_mode"])
    assert values.shape == (5, 6) and values.min() >= 1 and values.max() <= 9
    dropped = train_mode == 0
    assert 0 < dropped.sum() < values.numel()
    torch.testing.assert_close(train_mode[~dropped], values[~dropped] * 2.0)  # 1 / (1 − 0.5)
    assert demo["dropped_share"] == pytest.approx(dropped.float().mean().item())
    assert torch.equal(torch.tensor(demo["eval_mode"]), values)
    assert demo["survivors_scaled_by_1_over_1_minus_p"] and demo["eval_mode_is_identity"]
    assert dropout_demonstration(DEMO) == demo  # same seed, same tensor, same mask


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"p": 1.0}, r"^regularization_dropout_demo\.p: must be < 1, got 1.0$"),
        ({"high": 1}, r"^regularization_dropout_demo\.high: must be > low \(1\), got 1$"),
        ({"low": 0}, r"^regularization_dropout_demo\.low: must be >= 1, got 0$"),
    ],
)
def test_bad_dropout_demo_is_named(change, message):
    with pytest.raises(ParameterError, match=message):
        DropoutDemoParams.model_validate({**DEMO.dump(), **change})


def test_dropout_keeps_the_expected_activation_and_is_off_after_training():
    model = build_mlp(3, [2000], 2, dropout=0.5)
    hidden = torch.nn.Sequential(*model[:3]).train()  # Linear → LeakyReLU → Dropout
    x = torch.randn(1, 3)
    without = torch.nn.Sequential(*model[:2])(x)
    means = torch.stack([hidden(x) for _ in range(400)]).mean(0)
    # Survivors ×2 keep the mean: within 5 standard errors of the undropped activation.
    assert (means - without).abs().max() <= 5 * without.abs().max() / math.sqrt(400)

    features, labels = torch.randn(64, 3), torch.randint(0, 2, (64,))
    member = Member(model, features, labels, torch.Generator().manual_seed(0))
    train([member], _training("auto", "Adam", 0.01, epochs=1, batch_size=16))
    assert not model.training
    assert torch.equal(predict_logits(model, features), predict_logits(model, features))


@pytest.mark.parametrize("gradients", ["manual", "autograd"])
def test_augmentation_perturbs_training_batches_only(gradients):
    torch.manual_seed(1)
    features, labels = torch.randn(40, 3), torch.randint(0, 2, (40,))
    validation = (torch.randn(10, 3), torch.randint(0, 2, (10,)))
    noise = build_augmentation(AugmentationParams(name="gaussian_noise", std=0.5))
    seen: list[tuple[torch.Tensor, torch.Tensor]] = []

    def recording(batch: torch.Tensor, generator: torch.Generator) -> torch.Tensor:
        out = noise(batch, generator)
        seen.append((batch.clone(), out.clone()))
        return out

    model = build_mlp(3, [8], 2)
    member = Member(model, features, labels, torch.Generator().manual_seed(0), validation)
    settings = _training(gradients, "SGD", 0.1, epochs=2, batch_size=16)
    (history,) = train([member], settings, augmentation=recording)

    # Called once per training batch (3 per epoch), on training rows only, never on validation.
    assert [len(batch) for batch, _ in seen] == [16, 16, 8] * 2
    inputs = torch.cat([batch for batch, _ in seen])
    assert all(
        (features == row).all(dim=1).any() for row in inputs
    )  # rows of X, not modified in place
    perturbation = torch.cat([out - batch for batch, out in seen])
    assert perturbation.abs().min() > 0
    assert perturbation.std().item() == pytest.approx(0.5, rel=0.2)
    # Evaluation sees the clean validation rows: recomputing it gives the logged values.
    assert evaluate(model, *validation) == (history["val_loss"][-1], history["val_accuracy"][-1])
    assert torch.equal(predict_logits(model, validation[0]), predict_logits(model, validation[0]))


VARIANTS = {"none": {"name": "none"}, "l1": {"name": "l1", "training": {"l1_lambda": 0.01}}}


@pytest.mark.parametrize(
    ("variants", "message"),
    [
        # Every case of the shared block check: tests/pipelines/training/test_variants.py.
        (
            {"l1": {"name": "l1", "training": {"l1_lambda": -1}}},
            r"regularization\.l1\.training\.l1_lambda: must be >= 0",
        ),
        (
            {"report": {"near_zero_threshold": 1e-3}},
            r"regularization\.report\.near_zero_threshold: unknown setting",
        ),
        ({}, "'regularization' must hold one block per variant"),
    ],
)
def test_bad_variant_blocks_are_named_before_training(
    variants, message, small_model, small_training
):
    with pytest.raises(ValueError, match=message):
        plan_variants(small_model, small_training, variants)


@pytest.fixture(scope="module")
def results(model_inputs, table_schema, small_model, small_training):
    plan = plan_variants(small_model, small_training, VARIANTS)
    return plan, [
        train_variant(
            model_inputs["fit_set"],
            model_inputs["validation_set"],
            model_inputs["test_set"],
            small_model,
            small_training,
            VariantParams.model_validate(block),
            table_schema,
        )
        for block in VARIANTS.values()
    ]


def test_comparison_reports_gap_sparsity_and_one_pick(results):
    plan, trained = results
    table, metrics = compare_variants(plan, REPORT, *trained)
    assert table["variant"].tolist() == ["none", "l1"]
    for row, result in zip(table.itertuples(), trained):
        assert row.generalization_gap == pytest.approx(
            result["metrics"]["train_accuracy"] - result["metrics"]["test_accuracy"]
        )
        weights = torch.cat([result["state_dict"][k].reshape(-1) for k in ("0.weight", "2.weight")])
        assert row.near_zero_weight_share == pytest.approx(
            (weights.abs() < 1e-3).float().mean().item()
        )
        assert row.weight_l1_norm == pytest.approx(weights.abs().sum().item(), rel=1e-5)
        assert metrics[f"{row.variant}.near_zero_weight_share"] == {
            "value": row.near_zero_weight_share,
            "step": 0,
        }
    assert (
        table.loc[1, "overrides"] == "training.l1_lambda=0.01"
        and table.loc[0, "overrides"] == "(defaults)"
    )
    assert table["selected"].sum() == 1
    assert table.loc[table["selected"], "val_accuracy"].item() == table["val_accuracy"].max()
    assert near_zero_share([torch.tensor([[0.0, 1e-4], [-2e-3, 1.0]])], 1e-3) == 0.5

    demo = dropout_demonstration(DEMO)
    text = report_markdown(table, demo, REPORT)
    picked = table.loc[table["selected"], "variant"].item()
    assert f"Best variant by validation accuracy: `{picked}`" in text
    assert "## Dropout demonstration (p = 0.5)" in text


def test_selection_reads_validation_never_test():
    table = pd.DataFrame(
        {
            "variant": ["a", "b", "c"],
            "val_accuracy": [0.90, 0.95, 0.95],
            "final_val_loss": [0.20, 0.30, 0.25],
            "test_accuracy": [0.99, 0.80, 0.70],  # the best test score must not win
        }
    )
    assert select_by_validation(table) == [False, False, True]  # tie on accuracy → lower loss
    no_validation = table.assign(val_accuracy=math.nan, final_val_loss=math.nan)
    assert select_by_validation(no_validation) == [False, False, False]
