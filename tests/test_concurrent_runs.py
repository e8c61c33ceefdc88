"""Runs side by side in one project: real `kedro run` processes started at the same moment.

Each pair shares the project's data folder, tuning journal and MLflow store, which does not
exist yet when they start (a fresh checkout).
"""

from __future__ import annotations

import copy
import os
import subprocess
import sys
from pathlib import Path

import mlflow
import optuna
import pytest

from tests.pipelines.tuning.conftest import tiny_blocks, write_local_parameters

TIMEOUT_S = 300


@pytest.fixture
def project(project_copy: Path) -> Path:
    """The project copy with a tuning run of seconds: one Dask worker, three trials, one
    baseline with a grid of three."""
    blocks = tiny_blocks(n_trials=3, ensemble_seeds=1)
    blocks["tuning"]["dask"]["n_workers"] = 1
    baseline = copy.deepcopy(blocks["tuning"]["baselines"]["logistic_regression"])
    baseline["grid"] = {"C": [0.1, 1.0, 10.0]}
    blocks["tuning"]["baselines"] = {"logistic_regression": baseline}
    write_local_parameters(project_copy, blocks)
    return project_copy


def start(project: Path, pipeline: str) -> subprocess.Popen:
    command = [sys.executable, "-m", "kedro", "run", "--pipelines", pipeline]
    if pipeline == "__default__":
        command += ["--params", "training.epochs=2,training.progress=false"]
    return subprocess.Popen(
        command,
        cwd=project,
        env={**os.environ, "KEDRO_DISABLE_TELEMETRY": "true"},
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
    )


def finish(*runs: subprocess.Popen) -> list[str]:
    """Waits for every run; fails with the log of each one that did not exit 0."""
    logs = [run.communicate(timeout=TIMEOUT_S)[0] for run in runs]
    failed = [log[-4000:] for run, log in zip(runs, logs) if run.returncode != 0]
    assert not failed, "\n\n----\n\n".join(failed)
    return logs


def tracking_store() -> str:
    return os.environ["MLFLOW_TRACKING_URI"]


def test_two_tuning_runs_at_once_on_a_fresh_checkout(project):
    assert not Path(tracking_store().removeprefix("sqlite:///")).exists()

    finish(start(project, "tuning"), start(project, "tuning"))

    journal = project / "data/07_model_output/tuning_study.journal"
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    trials = optuna.load_study(study_name="test", storage=storage).trials
    # Each run adds three trials; the first run to open the study also enqueues the default.
    assert len(trials) == 6
    assert sorted(t.number for t in trials) == list(range(6))
    assert all(t.state.is_finished() for t in trials)
    runs = mlflow.MlflowClient(tracking_store()).search_runs(
        [
            mlflow.MlflowClient(tracking_store())
            .get_experiment_by_name("neural_net_lab")
            .experiment_id
        ],
        filter_string="tags.mlflow.runName = 'tuning'",
    )
    assert sorted(r.info.status for r in runs) == ["FINISHED", "FINISHED"]


def test_the_default_run_while_a_tuning_run_is_under_way(project):
    tuning = start(project, "tuning")
    default = start(project, "__default__")

    finish(tuning, default)

    for name in ("phone_price_model.pt", "tuned_ensemble.pt", "scaler.json"):
        assert (project / "data/06_models" / name).stat().st_size > 0
