"""Every registered pipeline runs by its own name on a fresh copy of the project, or stops
before any node with a message naming the pipelines to run first; run in that order, it then
works."""

from __future__ import annotations

import pkgutil
import re
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest

import neural_net_lab.pipelines
from neural_net_lab.hooks import MissingInputError

from .conftest import FAST_TRAINING, mlflow_client, run_kedro

# find_pipelines registers one pipeline per folder: a new folder is tested without a change here.
PIPELINES = sorted(
    module.name for module in pkgutil.iter_modules(neural_net_lab.pipelines.__path__)
)

# --params that keep each run to seconds (FAST_TRAINING for any pipeline not named).
TINY: dict[str, dict[str, Any]] = {
    "optimizers": {**FAST_TRAINING, "optimizers_trajectories.rosenbrock.steps": 20},
    "transfer": {
        **FAST_TRAINING,
        "transfer.training.epochs": 2,
        "transfer.learning_curve.sizes": [30],
        "transfer.learning_curve.repeats": 1,
    },
    "synthetic_data": {"synthetic_data.n_rows": 200},
}


def _tiny_tuning(project: Path) -> None:
    from tests.pipelines.tuning.conftest import tiny_blocks, write_local_parameters  # noqa: PLC0415

    write_local_parameters(project, tiny_blocks(n_trials=1, dask={"n_workers": 1}))


# Blocks that --params cannot shrink (a search space's keys), written to conf/local first.
LOCAL_SETUP: dict[str, Callable[[Path], None]] = {"tuning": _tiny_tuning}

# The pipelines that need another one's outputs and say so: the default run's later stages
# (training reads the split, evaluation the model) and those that reuse the trained model.
NEED_A_PRIOR_RUN = {"training", "evaluation", "inference", "transfer"}


def _run(project: Path, name: str) -> None:
    run_kedro(project, name, TINY.get(name, FAST_TRAINING))


@pytest.mark.parametrize("name", PIPELINES)
def test_each_pipeline_runs_by_name_on_a_fresh_copy(project_copy, name):
    if name in LOCAL_SETUP:
        LOCAL_SETUP[name](project_copy)
    try:
        _run(project_copy, name)
        needed = []
    except MissingInputError as error:
        needed = re.findall(r"`kedro run --pipelines (\w+)`", str(error))
        assert needed, f"the error names no pipeline to run first: {error}"
        for other in needed:
            _run(project_copy, other)
        _run(project_copy, name)

    assert (name in NEED_A_PRIOR_RUN) == bool(needed), needed
    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    runs = client.search_runs([experiment.experiment_id], f"attributes.run_name = '{name}'")
    assert runs[0].info.status == "FINISHED"
