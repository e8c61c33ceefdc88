"""backprop: the lesson's published numbers, the three-way check on real rows, bad parameters,
and the whole pipeline in a real KedroSession against a temporary MLflow store."""

from __future__ import annotations

import copy
import json
from functools import partial
from pathlib import Path

import numpy as np
import pytest
import torch
import yaml
from kedro.validation import ParameterValidationError
from torch.nn import functional as F

from neural_net_lab.engine.config import ModelParams
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.engine.model import build_mlp
from neural_net_lab.pipelines.backprop import nodes
from neural_net_lab.pipelines.backprop.finite_differences import (
    _one_cpu_thread,
    central_differences,
)
from neural_net_lab.pipelines.backprop.params import (
    BackpropParams,
    FiniteDifferenceParams,
    MlpCheckParams,
)
from neural_net_lab.pipelines.backprop.report import mlp_report
from neural_net_lab.table import network_for_table
from tests.conftest import PROJECT_ROOT, mlflow_client, run_kedro

# The classic worked example's published figures (to the digits published).
PUBLISHED = {
    "loss": 0.298371109,
    "grad_w5": 0.082167041,  # layer2.weight[0][0]
    "grad_w1": 0.000438568,  # layer1.weight[0][0]
    "w5_after_step": 0.35891648,
    "w1_after_step": 0.149780716,
}
TOLERANCE = 1e-8


def _config(name: str) -> dict:
    return yaml.safe_load((PROJECT_ROOT / "conf" / "base" / name).read_text())


@pytest.fixture(scope="module")
def backprop_params() -> dict:
    """The shipped parameters_backprop.yml."""
    return _config("parameters_backprop.yml")["backprop"]


@pytest.fixture(scope="module")
def lesson(backprop_params) -> dict:
    backprop = BackpropParams.model_validate(backprop_params)
    autograd = nodes.autograd_sgd_step(backprop)
    return {
        "backprop": backprop,
        "manual": nodes.hand_derived_gradients(backprop),
        "autograd": autograd,
        "finite_difference": nodes.finite_difference_gradients(backprop),
        "accumulation": nodes.demonstrate_gradient_accumulation(backprop, autograd),
    }


@pytest.mark.parametrize("method", ["manual", "autograd", "finite_difference"])
def test_every_method_gives_the_published_loss_and_gradients(lesson, method):
    result = lesson[method]
    assert result["loss"] == pytest.approx(PUBLISHED["loss"], abs=TOLERANCE)
    assert result["gradients"]["layer2.weight"][0][0] == pytest.approx(
        PUBLISHED["grad_w5"], abs=TOLERANCE
    )
    assert result["gradients"]["layer1.weight"][0][0] == pytest.approx(
        PUBLISHED["grad_w1"], abs=TOLERANCE
    )


def test_sgd_step_gives_the_published_weights_and_follows_the_hand_gradients(lesson):
    updated = lesson["autograd"]["updated_parameters"]
    assert updated["layer2.weight"][0][0] == pytest.approx(
        PUBLISHED["w5_after_step"], abs=TOLERANCE
    )
    assert updated["layer1.weight"][0][0] == pytest.approx(
        PUBLISHED["w1_after_step"], abs=TOLERANCE
    )
    lr = lesson["backprop"].sgd.lr
    for name, gradient in lesson["manual"]["gradients"].items():
        layer, kind = name.split(".")
        before = np.array(getattr(lesson["backprop"].network[layer], kind))
        np.testing.assert_allclose(updated[name], before - lr * gradient, rtol=0, atol=1e-15)


def test_hand_derived_gradients_match_autograd_to_rounding(lesson):
    manual, autograd = lesson["manual"]["gradients"], lesson["autograd"]["gradients"]
    assert list(manual) == ["layer1.weight", "layer1.bias", "layer2.weight", "layer2.bias"]
    for name in manual:
        np.testing.assert_allclose(manual[name], autograd[name], rtol=1e-14, atol=1e-17)


def test_two_backward_passes_without_zero_grad_double_the_gradient_and_change_the_step(lesson):
    accumulation, single = lesson["accumulation"], lesson["autograd"]
    assert accumulation["passes"] == 2
    assert accumulation["exact_multiple_of_single_pass"] is True
    assert accumulation["max_abs_deviation_from_multiple"] == 0.0
    lr = lesson["backprop"].sgd.lr
    w5 = lesson["backprop"].network["layer2"].weight[0][0]
    assert (
        accumulation["gradients"]["layer2.weight"][0][0]
        == 2 * single["gradients"]["layer2.weight"][0][0]
    )
    assert accumulation["updated_parameters"]["layer2.weight"][0][0] == pytest.approx(
        w5 - lr * 2 * PUBLISHED["grad_w5"], abs=TOLERANCE
    )
    assert accumulation["max_step_difference"] == pytest.approx(
        lr * max(np.abs(g).max() for g in single["gradients"].values()), rel=1e-12
    )


def test_a_deeper_network_from_parameters_gets_the_same_check(backprop_params):
    params = copy.deepcopy(backprop_params)
    params["network"] = {
        "hidden": {"weight": [[0.1, -0.2], [0.3, 0.4], [-0.5, 0.6]], "bias": [0.0, 0.1, -0.1]},
        "middle": {"weight": [[0.2, 0.1, -0.3], [0.5, -0.4, 0.2]], "bias": [0.05, -0.05]},
        "output": {"weight": [[0.7, -0.1], [0.3, 0.9]], "bias": [0.2, 0.1]},
    }
    network = BackpropParams.model_validate(params)
    comparison = nodes.compare_gradients(
        nodes.hand_derived_gradients(network),
        nodes.autograd_sgd_step(network),
        nodes.finite_difference_gradients(network),
    )
    assert set(comparison["relative_error"]["manual_vs_autograd"]) == {
        f"{layer}.{kind}" for layer in ("hidden", "middle", "output") for kind in ("weight", "bias")
    }
    assert comparison["max_relative_error"]["manual_vs_autograd"] < 1e-13
    assert comparison["max_relative_error"]["manual_vs_finite_difference"] < 1e-6


def test_batched_finite_differences_equal_moving_each_parameter_entry():
    """The shortcut of the finite-difference helper against the plain loop it replaces."""
    generator = torch.Generator().manual_seed(0)
    torch.manual_seed(0)
    model = build_mlp(5, [7, 6], 3, negative_slope=0.1, dropout=0.3).double().eval()
    features = torch.randn(4, 5, generator=generator, dtype=torch.float64)
    labels = torch.tensor([0, 2, 1, 2])
    loss_of_outputs = partial(nodes._mean_cross_entropy, labels=labels)
    step = 1e-6

    loss, fast = central_differences(model, features, loss_of_outputs, step)

    assert loss == pytest.approx(F.cross_entropy(model(features), labels).item(), rel=1e-15)
    with torch.no_grad(), _one_cpu_thread():
        for name, parameter in model.named_parameters():
            flat = parameter.view(-1)
            slow = np.empty(flat.numel())
            for entry in range(flat.numel()):
                original = flat[entry].item()
                flat[entry] = original + step
                plus = loss_of_outputs(model(features)).item()
                flat[entry] = original - step
                minus = loss_of_outputs(model(features)).item()
                flat[entry] = original
                slow[entry] = (plus - minus) / (2 * step)
            np.testing.assert_allclose(fast[name].ravel(), slow, rtol=0, atol=1e-9, err_msg=name)


def test_mlp_check_on_real_rows_for_another_architecture(model_inputs, table_schema):
    model_params = network_for_table(
        ModelParams(hidden_dims=[24, 12, 8], negative_slope=0.05, dropout=0.2), table_schema
    )
    assert (model_params.input_dim, model_params.n_classes) == (20, 4)
    check = MlpCheckParams(rows=10, seed=3)
    batch = nodes.select_check_rows(model_inputs["train_set"], table_schema, check)
    np.testing.assert_array_equal(
        batch["features"].numpy(),
        model_inputs["train_set"][table_schema.inputs].head(10).to_numpy(),
    )
    weights = nodes.initialize_mlp(model_params, check)
    manual = nodes.mlp_hand_derived_gradients(weights, model_params, batch)
    comparison = nodes.compare_gradients(
        manual,
        nodes.mlp_autograd_gradients(weights, model_params, batch),
        nodes.mlp_finite_difference_gradients(
            weights, model_params, batch, FiniteDifferenceParams(step=1e-6)
        ),
    )
    report = mlp_report(model_params, batch, check, manual, comparison)

    assert report["parameters"] == {
        "0.weight": [24, 20],
        "0.bias": [24],
        "3.weight": [12, 24],
        "3.bias": [12],
        "6.weight": [8, 12],
        "6.bias": [8],
        "9.weight": [4, 8],
        "9.bias": [4],
    }
    losses = report["loss_by_method"]
    assert losses["manual"] == pytest.approx(losses["autograd"], rel=1e-14)
    assert losses["manual"] == pytest.approx(losses["finite_difference"], rel=1e-14)
    for name, error in report["relative_error"]["manual_vs_autograd"].items():
        assert error < 1e-13, name
    for name, error in report["relative_error"]["manual_vs_finite_difference"].items():
        assert error < 1e-6, name
    assert all(norm > 0 for norm in report["gradient_norm"].values())
    # Same seed, same weights.
    again = nodes.initialize_mlp(model_params, check)
    assert all(torch.equal(weights[k], again[k]) for k in weights)


def _with(params: dict, path: str, value) -> dict:
    params = copy.deepcopy(params)
    *parents, leaf = path.split(".")
    node = params
    for key in parents:
        node = node[key]
    node[leaf] = value
    return params


@pytest.mark.parametrize(
    ("path", "value", "named"),
    [
        (
            "network.layer2.weight",
            [[0.4, 0.45, 0.1], [0.5, 0.55, 0.1]],
            "backprop.network.layer2.weight",
        ),
        ("network.layer1.weight", [[0.15, 0.2], [0.25]], "backprop.network.layer1.weight"),
        (
            "network.layer1.weight",
            [[0.15, "x"], [0.25, 0.3]],
            r"backprop.network.layer1.weight\[0\]\[1\]",
        ),
        ("network.layer1.bias", [0.35, 0.35, 0.35], "backprop.network.layer1.bias"),
        ("example.input", [0.05, 0.1, 0.2], "backprop.network.layer1.weight"),
        ("example.target", [0.01], "backprop.example.target"),
        ("sgd.lr", -0.5, "backprop.sgd.lr"),
        ("sgd.lr", 0, "backprop.sgd.lr"),
        ("sgd.lr", "fast", "backprop.sgd.lr"),
        ("sgd.lr", float("nan"), "backprop.sgd.lr"),
        ("sgd.lr", True, "backprop.sgd.lr"),
        ("finite_difference.step", 0.0, "backprop.finite_difference.step"),
        ("gradient_accumulation.passes", 1, "backprop.gradient_accumulation.passes"),
    ],
)
def test_bad_network_parameters_name_the_parameter(backprop_params, path, value, named):
    with pytest.raises(ParameterError, match=f"^{named}: "):
        BackpropParams.model_validate(_with(backprop_params, path, value))


def test_bad_mlp_check_parameters_name_the_parameter(model_inputs, table_schema, backprop_params):
    model_params = ModelParams.model_validate(_config("parameters_training.yml")["model"])
    train_set = model_inputs["train_set"]
    for rows, seed, named in ((0, 1, "rows"), (4, "x", "seed")):
        bad = _with(_with(backprop_params, "mlp_check.rows", rows), "mlp_check.seed", seed)
        with pytest.raises(ParameterError, match=rf"^backprop\.mlp_check\.{named}: "):
            BackpropParams.model_validate(bad)
    check = MlpCheckParams(rows=100_000, seed=1)
    with pytest.raises(ValueError, match=r"backprop\.mlp_check\.rows is 100000 but train_set has"):
        nodes.select_check_rows(train_set, table_schema, check)
    # The network's widths come from the table: a class count it does not give is named.
    two_classes = model_params.model_copy(update={"n_classes": 2})
    with pytest.raises(ValueError, match=r"model\.n_classes: is 2 but .* gives 4"):
        network_for_table(two_classes, table_schema)


def test_pipeline_writes_report_and_mlflow_metrics(project_copy: Path):
    run_kedro(project_copy, "data_processing")
    run_kedro(project_copy, "backprop")

    report = json.loads((project_copy / "data/08_reporting/backprop_report.json").read_text())
    assert report["loss"] == pytest.approx(PUBLISHED["loss"], abs=TOLERANCE)
    for method in ("manual", "autograd", "finite_difference"):
        gradients = report["gradients"][method]
        assert gradients["layer2.weight"][0][0] == pytest.approx(
            PUBLISHED["grad_w5"], abs=TOLERANCE
        )
        assert gradients["layer1.weight"][0][0] == pytest.approx(
            PUBLISHED["grad_w1"], abs=TOLERANCE
        )
    updated = report["updated_parameters"]
    assert updated["layer2.weight"][0][0] == pytest.approx(
        PUBLISHED["w5_after_step"], abs=TOLERANCE
    )
    assert updated["layer1.weight"][0][0] == pytest.approx(
        PUBLISHED["w1_after_step"], abs=TOLERANCE
    )
    assert report["max_abs_difference"]["manual_vs_autograd"] < 1e-15
    assert report["max_abs_difference"]["manual_vs_finite_difference"] < 1e-9
    assert report["gradient_accumulation"]["exact_multiple_of_single_pass"] is True

    mlp = report["phone_price_mlp"]
    assert mlp["parameters"] == {
        "0.weight": [128, 20],
        "0.bias": [128],
        "2.weight": [256, 128],
        "2.bias": [256],
        "4.weight": [4, 256],
        "4.bias": [4],
    }
    assert mlp["rows"] == 16
    assert set(mlp["relative_error"]["manual_vs_finite_difference"]) == set(mlp["parameters"])
    assert mlp["max_relative_error"]["manual_vs_autograd"] < 1e-13
    assert mlp["max_relative_error"]["manual_vs_finite_difference"] < 1e-6

    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    (run,) = client.search_runs([experiment.experiment_id], "tags.`mlflow.runName` = 'backprop'")
    metrics = run.data.metrics
    assert metrics["backprop.loss"] == report["loss"]
    assert (
        metrics["backprop.mlp.max_relative_error.manual_vs_finite_difference"]
        == (mlp["max_relative_error"]["manual_vs_finite_difference"])
    )
    assert {f"backprop.max_abs_difference.{pair}" for pair in report["max_abs_difference"]} <= set(
        metrics
    )
    assert run.data.params["backprop.sgd.lr"] == "0.5"
    assert "backprop_report.json" in {a.path for a in client.list_artifacts(run.info.run_id)}

    with pytest.raises(ParameterValidationError, match=r"backprop\.sgd\.lr: must be > 0, got -0.5"):
        run_kedro(project_copy, "backprop", {"backprop.sgd.lr": -0.5})
