"""Typed parameters: Kedro validates every block before the first node runs, errors name the
full parameter path and the rule, and MLflow still gets one param per setting."""

from __future__ import annotations

import pytest
from kedro.validation import ParameterValidationError

from .conftest import kedro_cli, mlflow_client, run_kedro

# (pipeline, --params, what the error says): a sample of bad values per block.
BAD_VALUES = [
    ("data_processing", {"columns.classes": [0]}, "columns.classes: must hold at least 2 item(s)"),
    (
        "data_processing",
        {"data_processing.train_share": 1.5},
        "data_processing.train_share: must be < 1, got 1.5",
    ),
    ("training", {"model.hidden_dims": [128, 0]}, "model.hidden_dims[1]: must be >= 1, got 0"),
    ("training", {"training.optimizer.lr": -1}, "training.optimizer.lr: must be > 0, got -1"),
    ("training", {"training.epoch": 3}, "training.epoch: unknown setting (a typo?)"),
    (
        "training",
        {"training.optimizer.momentun": 0.9},
        "training.optimizer.momentun: Adam has no setting 'momentun'",
    ),
    (
        "training",
        {"training.optimizer.betas": [1.5, 0.999]},
        "training.optimizer: Adam refused its settings: Invalid beta parameter at index 0",
    ),
    (
        "training",
        {"served_model.example_rows": 0},
        "served_model.example_rows: must be >= 1, got 0",
    ),
    ("evaluation", {"evaluation.baseline.C": 0}, "evaluation.baseline.C: must be > 0, got 0"),
    (
        "optimizers",
        {"optimizers.sgd.training.optimizer.lr": -0.1},
        "optimizers.sgd.training.optimizer.lr: must be > 0, got -0.1",
    ),
    (
        "optimizers",
        {"optimizers.adam.training.optimizer.name": "Adamm"},
        "optimizers.adam.training.optimizer.name: unknown optimizer 'Adamm'",
    ),
    (
        "optimizers",
        {"optimizers_ewa.betas": [0.5, 1.0]},
        "optimizers_ewa.betas[1]: must be < 1, got 1.0",
    ),
    (
        "optimizers",
        {"optimizers_trajectories.rosenbrock.steps": 0},
        "optimizers_trajectories.rosenbrock.steps: must be >= 1, got 0",
    ),
    (
        "regularization",
        {"regularization.l1.training.l1_lambda": -1},
        "regularization.l1.training.l1_lambda: must be >= 0, got -1",
    ),
    (
        "regularization",
        {"regularization.dropout.model.dropuot": 0.5},
        "regularization.dropout.model.dropuot: unknown setting",
    ),
    (
        "regularization",
        {"regularization_dropout_demo.p": 1.0},
        "regularization_dropout_demo.p: must be < 1, got 1.0",
    ),
    (
        "transfer",
        {"transfer.learning_curve.repeats": 0},
        "transfer.learning_curve.repeats: must be >= 1, got 0",
    ),
    (
        "transfer",
        {"transfer.strategies.freeze.init": "imagenet"},
        "transfer.strategies.freeze.init: must be one of 'pretrained' or 'random'",
    ),
    ("inference", {"model.n_classes": 1}, "model.n_classes: must be >= 2, got 1"),
    (
        "tuning",
        {"tuning.final": "bagging"},
        "tuning.final: must be one of 'ensemble' or 'refit', got 'bagging'",
    ),
    ("tuning", {"tuning.ensemble_seeds": 0}, "tuning.ensemble_seeds: must be >= 1, got 0"),
    ("backprop", {"backprop.sgd.lr": -0.5}, "backprop.sgd.lr: must be > 0, got -0.5"),
    ("synthetic_data", {"synthetic_data.n_rows": 0}, "synthetic_data.n_rows: must be >= 4, got 0"),
]


def _written(project) -> list[str]:
    """Every file under data/ except the shipped raw tables."""
    return sorted(
        str(path.relative_to(project))
        for path in (project / "data").rglob("*")
        if path.is_file() and "01_raw" not in path.parts
    )


@pytest.mark.parametrize(("pipeline", "params", "message"), BAD_VALUES)
def test_a_bad_value_stops_the_run_before_any_node_naming_its_path(
    project_copy, pipeline, params, message
):
    with pytest.raises(ParameterValidationError) as error:
        run_kedro(project_copy, pipeline, params)
    assert message in str(error.value)
    assert _written(project_copy) == []
    experiment = mlflow_client().get_experiment_by_name("neural_net_lab")
    assert experiment is None or not mlflow_client().search_runs([experiment.experiment_id])


def test_params_on_the_command_line_are_validated(project_copy):
    result = kedro_cli(
        project_copy, "run", "--pipelines", "training", "--params", "training.optimizer.lr=-1"
    )
    assert result.returncode != 0
    assert "training.optimizer.lr: must be > 0, got -1" in result.stdout + result.stderr
    assert _written(project_copy) == []
