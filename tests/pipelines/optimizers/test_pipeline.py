"""optimizers pipeline: the exponentially weighted average, the lesson's formulas next to
PyTorch's, the variant checks, and the pipeline end to end against a temporary MLflow store."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import torch
import yaml
from kedro.validation import ParameterValidationError

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.pipelines.optimizers.nodes import (
    average_temperatures,
    check_variants,
    draw_temperatures,
    exponentially_weighted_average,
    formula_pair_paths,
)
from neural_net_lab.pipelines.optimizers.params import (
    EwaParams,
    FormulaPairsParams,
    TrajectoriesParams,
)
from neural_net_lab.pipelines.optimizers.pipeline import SHIPPED_VARIANTS
from neural_net_lab.pipelines.optimizers.report import epochs_to_reach, formula_pair_summary
from neural_net_lab.variants import variant_names
from tests.conftest import FAST_TRAINING, PROJECT_ROOT, mlflow_client, run_kedro

PARAMS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_optimizers.yml").read_text())
DEFAULTS = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_training.yml").read_text())
# Short optimizer paths: the tests are about the pipeline, not about reaching the minimum.
FAST = {**FAST_TRAINING, "optimizers_trajectories.rosenbrock.steps": 20}


def test_ewa_matches_a_hand_computation():
    values = [10.0, 20.0, 30.0]
    # β = 0.5 from v0 = 0: v1 = 0.5·10 = 5, v2 = 0.5·5 + 0.5·20 = 12.5, v3 = 0.5·12.5 + 0.5·30 = 21.25
    assert exponentially_weighted_average(values, 0.5, False) == pytest.approx([5.0, 12.5, 21.25])
    # Bias-corrected: divided by 1 − 0.5ᵗ = 0.5, 0.75, 0.875
    assert exponentially_weighted_average(values, 0.5, True) == pytest.approx(
        [10.0, 12.5 / 0.75, 21.25 / 0.875]
    )
    # β = 0.9: v1 = 1, v2 = 0.9 + 2 = 2.9, v3 = 2.61 + 3 = 5.61
    assert exponentially_weighted_average(values, 0.9, False) == pytest.approx([1.0, 2.9, 5.61])


def test_bias_correction_removes_the_pull_towards_zero():
    constant = [7.0] * 20
    raw = exponentially_weighted_average(constant, 0.9, False)
    corrected = exponentially_weighted_average(constant, 0.9, True)
    assert raw == pytest.approx([7.0 * (1 - 0.9**t) for t in range(1, 21)])
    assert raw[0] == pytest.approx(0.7)  # ten times too small on the first day
    assert corrected == pytest.approx(constant)
    # β = 1 would divide by 1 − βᵗ = 0: the parameters refuse it before any node runs.
    with pytest.raises(ParameterError, match=r"^optimizers_ewa\.betas\[1\]: must be < 1, got 1.0$"):
        EwaParams.model_validate({**PARAMS["optimizers_ewa"], "betas": [0.5, 1.0]})


def test_ewa_table_uses_the_lessons_temperatures():
    ewa = EwaParams.model_validate(PARAMS["optimizers_ewa"])
    temperatures = draw_temperatures(ewa)
    torch.manual_seed(0)
    lesson = (torch.randn(30) * 10).double().numpy()
    assert temperatures["temperature"].to_numpy() == pytest.approx(lesson)
    table = average_temperatures(temperatures, ewa)
    assert list(table.columns) == [
        "day",
        "temperature",
        "ewa_beta_0.5",
        "ewa_beta_0.5_corrected",
        "ewa_beta_0.9",
        "ewa_beta_0.9_corrected",
    ]
    # Each day's value follows from the previous one by the recurrence.
    v, t = table["ewa_beta_0.9"], table["temperature"]
    assert v[1:].to_numpy() == pytest.approx((0.9 * v[:-1] + 0.1 * t[1:].to_numpy()).to_numpy())


def test_lesson_formulas_against_pytorch_settings():
    pairs = FormulaPairsParams.model_validate(PARAMS["optimizers_formula_pairs"])
    trajectories = TrajectoriesParams.model_validate(PARAMS["optimizers_trajectories"])
    summary = formula_pair_summary(formula_pair_paths(pairs, trajectories)).set_index("pytorch")
    beta = pairs.momentum.beta
    momentum = summary[summary["pair"] == "momentum"]
    dampened = momentum[momentum.index.str.contains("dampening")].iloc[0]
    scaled = momentum[~momentum.index.str.contains("dampening")].iloc[0]
    # dampening = 1−β: PyTorch's buffer starts at ∇L, not at (1−β)∇L, so the first step is 1/(1−β) × the lesson's.
    assert dampened["first_step_ratio"] == pytest.approx(1 / (1 - beta))
    assert dampened["max_distance"] > 0.1
    # lr·(1−β) without dampening is the lesson's update exactly.
    assert scaled["max_distance"] < 1e-12
    adam = summary[summary["pair"] == "adam"]
    corrected = adam[adam.index.str.contains("bias-corrected")].iloc[0]
    scheduled = adam[adam.index.str.contains("LambdaLR")].iloc[0]
    beta1, beta2 = pairs.adam.betas
    # Without bias correction the first step is lr·(1−β₁)/√(1−β₂) instead of lr.
    assert corrected["first_step_ratio"] == pytest.approx(
        (1 - beta2) ** 0.5 / (1 - beta1), rel=1e-6
    )
    assert scheduled["max_distance"] < 1e-4  # equal up to where ε is added


@pytest.mark.parametrize(
    ("block", "path", "value", "message"),
    [
        (
            "optimizers_formula_pairs",
            "adam.betas",
            [0.9, 0.99, 0.999],
            r"^optimizers_formula_pairs\.adam\.betas: must hold at most 2 item\(s\)",
        ),
        (
            "optimizers_formula_pairs",
            "momentum.beta",
            1.0,
            r"^optimizers_formula_pairs\.momentum\.beta: must be < 1, got 1.0$",
        ),
        (
            "optimizers_trajectories",
            "rosenbrock.function.kind",
            "himmelblau",
            r"^optimizers_trajectories\.rosenbrock\.function\.kind: must be one of",
        ),
        (
            "optimizers_trajectories",
            "elongated_quadratic.start",
            [1.0],
            r"^optimizers_trajectories\.elongated_quadratic\.start: must hold at least 2",
        ),
    ],
)
def test_bad_demonstration_settings_are_named(block, path, value, message):
    model = {"optimizers_formula_pairs": FormulaPairsParams}.get(block, TrajectoriesParams)
    settings = copy.deepcopy(PARAMS[block])
    *parents, leaf = path.split(".")
    node = settings
    for key in parents:
        node = node[key]
    node[leaf] = value
    with pytest.raises(ParameterError, match=message):
        model.model_validate(settings)


def test_epochs_to_reach():
    assert epochs_to_reach([0.5, 0.8, 0.92, 0.95], 0.9) == 3
    assert epochs_to_reach([0.5, 0.8], 0.9) is None


def _check(model_inputs, schema, variants):
    return check_variants(
        model_inputs["fit_set"],
        model_inputs["validation_set"],
        model_inputs["test_set"],
        variants,
        ModelParams.model_validate(DEFAULTS["model"]),
        TrainingParams.model_validate(DEFAULTS["training"]),
        schema,
    )


def test_check_variants_refuses_a_bad_block_and_an_empty_mapping(model_inputs, table_schema):
    # Every case of the shared block check: tests/pipelines/training/test_variants.py.
    bad = copy.deepcopy(PARAMS["optimizers"])
    bad["adam"]["training"]["optimizer"]["name"] = "Adamm"
    with pytest.raises(
        ValueError, match=r"optimizers\.adam\.training\.optimizer\.name: unknown optimizer 'Adamm'"
    ):
        _check(model_inputs, table_schema, bad)
    with pytest.raises(ValueError, match="'optimizers' must hold one block per variant"):
        _check(model_inputs, table_schema, {})
    # A variant's width is checked against the table's before any variant trains.
    wide = copy.deepcopy(PARAMS["optimizers"])
    wide["adam"]["model"] = {"input_dim": 19}
    with pytest.raises(
        ValueError, match=r"optimizers: variant 'adam': model\.input_dim: is 19 but .* gives 20"
    ):
        _check(model_inputs, table_schema, wide)


def test_check_variants_passes_the_tables_on(model_inputs, table_schema):
    checked = _check(model_inputs, table_schema, PARAMS["optimizers"])
    for frame, name in zip(checked, ("fit_set", "validation_set", "test_set")):
        pd.testing.assert_frame_equal(frame, model_inputs[name])


def _runs(client, experiment_id):
    runs = client.search_runs([experiment_id])
    parents = [r for r in runs if "mlflow.parentRunId" not in r.data.tags]
    children = [r for r in runs if "mlflow.parentRunId" in r.data.tags]
    return parents, children


def test_the_trainings_are_the_parameter_blocks():
    assert variant_names("optimizers", SHIPPED_VARIANTS, PROJECT_ROOT) == list(PARAMS["optimizers"])
    # The fallback for a run without a project around it names the same blocks.
    assert SHIPPED_VARIANTS == tuple(PARAMS["optimizers"])


def test_pipeline_logs_one_child_run_per_optimizer(project_copy, monkeypatch):
    # A sixth optimizer added to the parameters file only: no code knows its name.
    params_file = project_copy / "conf/base/parameters_optimizers.yml"
    params = yaml.safe_load(params_file.read_text())
    params["optimizers"]["nadam"] = {
        "name": "nadam",
        "training": {"optimizer": {"name": "NAdam", "lr": 0.002}},
    }
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    variants = params["optimizers"]
    monkeypatch.chdir(project_copy)  # Kedro finds the project, and its variants, from here
    epochs = FAST["training.epochs"]
    run_kedro(project_copy, "optimizers", FAST)

    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    (parent,), children = _runs(client, experiment.experiment_id)
    assert parent.info.run_name == "optimizers"
    assert parent.data.params["optimizers.sgd_momentum.training.optimizer.momentum"] == "0.9"
    assert {c.data.tags["mlflow.parentRunId"] for c in children} == {parent.info.run_id}
    by_name = {c.info.run_name: c for c in children}
    assert set(by_name) == {*SHIPPED_VARIANTS, "nadam"}
    for key, block in variants.items():
        child = by_name[block["name"]]
        for setting, value in block["training"]["optimizer"].items():
            assert child.data.params[f"training.optimizer.{setting}"] == str(value), (key, setting)
        assert child.data.params["training.epochs"] == str(epochs)
        for metric in ("train_loss", "val_loss", "val_accuracy"):
            steps = [m.step for m in client.get_metric_history(child.info.run_id, metric)]
            assert sorted(steps) == list(range(epochs)), (key, metric)
        # The child run is open while its variant trains: its duration covers the training
        # (start and end are whole milliseconds, hence the 1 ms).
        assert child.info.status == "FINISHED"
        duration_ms = child.info.end_time - child.info.start_time
        assert duration_ms > 0
        assert duration_ms >= child.data.metrics["training_seconds"] * 1000 - 1, key

    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    reports = {
        "optimizers_comparison.csv",
        "optimizers_comparison.md",
        "optimizers_loss_curves.png",
        "optimizers_ewa.csv",
        "optimizers_ewa.png",
        "optimizers_trajectories.csv",
        "optimizers_trajectories.png",
        "optimizers_formula_pairs.csv",
        "optimizers_formula_pairs.png",
    }
    assert reports <= artifacts
    assert all((project_copy / "data/08_reporting" / name).stat().st_size > 0 for name in reports)

    table = pd.read_csv(project_copy / "data/08_reporting/optimizers_comparison.csv")
    assert list(table["variant"]) == [block["name"] for block in variants.values()]
    for row in table.itertuples():
        assert row.test_accuracy == pytest.approx(
            by_name[row.variant].data.metrics["test_accuracy"]
        )
    markdown = (project_copy / "data/08_reporting/optimizers_comparison.md").read_text()
    assert "| sgd_momentum" in markdown and "epochs_to_target" in markdown


def test_unknown_optimizer_stops_the_run_before_any_training(project_copy, monkeypatch):
    monkeypatch.chdir(project_copy)
    with pytest.raises(
        ParameterValidationError,
        match=r"optimizers\.adam\.training\.optimizer\.name: unknown optimizer 'Adamm'",
    ):
        run_kedro(
            project_copy, "optimizers", {**FAST, "optimizers.adam.training.optimizer.name": "Adamm"}
        )

    # Kedro checked the typed blocks before any node ran, or any MLflow run opened.
    experiment = mlflow_client().get_experiment_by_name("neural_net_lab")
    assert experiment is None or not mlflow_client().search_runs([experiment.experiment_id])
    assert not (project_copy / "data/02_intermediate").exists()
    assert not (project_copy / "data/08_reporting/optimizers_comparison.csv").exists()
