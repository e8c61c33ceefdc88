"""The numbers stay put: the same seeds give the same reports, files and MLflow params and
metrics as recorded in tests/data/behaviour.json (``python -m tests.behaviour`` records it).

Recorded before the package was reorganised into named modules; a change that means to alter
results records again and says why in its commit.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import optuna

from .behaviour import RECORD, differences, record, run_lesson, run_tuning, tuning_blocks
from .conftest import run_kedro
from .mlflow_params import EXPECTED, logged_params
from .pipelines.tuning.conftest import write_local_parameters

# A tiny study's journal (tuning_blocks, 2 trials) written by the code before the reorganisation.
STUDY_BEFORE = Path(__file__).parent / "data" / "study_before_reorganisation.journal"


def test_every_output_and_mlflow_run_matches_the_record(project_copy):
    """Also: every run's params hold those recorded before the blocks were typed
    (tests/data/mlflow_params.json), same keys and values, and no block is logged whole.

    A pipeline that later reads more blocks logs more params, so extra keys are allowed there
    as long as they are settings, not blocks (``training`` next to ``training.epochs``).
    """
    run_lesson(project_copy)
    logged = logged_params()
    run_tuning(project_copy)
    changed = differences(json.loads(RECORD.read_text()), record(project_copy))
    assert not changed, "\n".join(line[:400] for line in changed[:30])

    before_typing = json.loads(EXPECTED.read_text())
    assert set(logged) == set(before_typing)
    for run, runs in before_typing.items():
        assert len(logged[run]) == len(runs), run
        for before, now in zip(runs, logged[run], strict=True):
            assert before.items() <= now.items(), run
            blocks = {key for key in now if any(k.startswith(f"{key}.") for k in now)}
            assert not blocks, (run, blocks)


def test_a_study_written_before_the_reorganisation_resumes(project_copy):
    """Its fingerprint (data, folds, space, fixed blocks) is computed as it was: the run adds
    trials to the 2 recorded instead of refusing the study as made on other data."""
    journal = project_copy / "data/07_model_output/tuning_study.journal"
    journal.parent.mkdir(parents=True)
    shutil.copy(STUDY_BEFORE, journal)
    blocks = tuning_blocks()
    blocks["tuning"]["n_trials"] = 1
    write_local_parameters(project_copy, blocks)
    run_kedro(project_copy, "tuning")
    storage = optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )
    study = optuna.load_study(study_name="test", storage=storage)
    assert [trial.number for trial in study.trials] == [0, 1, 2]
    assert study.user_attrs["fingerprint"] == "c1197524c1d6d191"
