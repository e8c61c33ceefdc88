"""Variant experiments are built from the running session's configuration (its --env and
--params), not from a second load of the project's files; later code does not see it."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project

from neural_net_lab.run_config import run_parameters

from .conftest import FAST_TRAINING, PROJECT_ROOT, mlflow_client, run_kedro


def _variants_run(project: Path) -> list[str]:
    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    (parent,) = client.search_runs([experiment.experiment_id], "attributes.run_name = 'optimizers'")
    children = client.search_runs(
        [experiment.experiment_id], f"tags.mlflow.parentRunId = '{parent.info.run_id}'"
    )
    return sorted(child.info.run_name for child in children)


def test_params_can_add_a_variant(project_copy):
    extra: dict[str, Any] = {
        "name": "sgd_fast",
        "training": {"optimizer": {"name": "SGD", "lr": 0.1}},
    }
    run_kedro(project_copy, "optimizers", {**FAST_TRAINING, "optimizers.sgd_fast": extra})

    assert "sgd_fast" in _variants_run(project_copy)
    assert run_parameters() is None  # the next session or test reads its own


def test_the_variants_come_from_the_sessions_environment(project_copy):
    shipped = yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_training.yml").read_text())
    staging = {
        # An environment's file replaces whole top-level blocks.
        "training": {**shipped["training"], "epochs": 1, "progress": False},
        "optimizers": {"adam": {"name": "adam", "training": {"optimizer": {"name": "Adam"}}}},
    }
    (project_copy / "conf" / "staging").mkdir()
    (project_copy / "conf" / "staging" / "parameters.yml").write_text(yaml.safe_dump(staging))
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy, env="staging") as session:
        session.run(pipeline_names=["optimizers"])

    assert _variants_run(project_copy) == ["adam"]
