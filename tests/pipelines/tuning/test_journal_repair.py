"""A tuning journal damaged by a crash: a cut-off last line is trimmed after a backup, under
the journal's own lock; a damaged line before it stops the run with the way out.

Optuna 5 skips a last line without its end when it reads, but glues its next append onto
it: the run that resumes then fails at its first trial, and every later read fails with a
bare ``JSONDecodeError``."""

from __future__ import annotations

import json
import shutil
import threading
import time

import optuna
import pandas as pd
import pytest
from optuna.storages import JournalStorage
from optuna.storages.journal import JournalFileBackend, JournalFileSymlinkLock

from neural_net_lab.pipelines.tuning.storage import DamagedJournalError, repair_journal
from tests.conftest import PROJECT_ROOT, kedro_cli, run_kedro

from .conftest import tiny_blocks, write_local_parameters

JOURNAL = "data/07_model_output/tuning_study.journal"


def _tiny(**changes):
    """Two trials on one worker, one baseline: a tuning run of seconds."""
    return tiny_blocks(
        n_trials=2,
        ensemble_seeds=1,
        dask={"n_workers": 1, "dashboard_address": None},
        baselines={
            "logistic_regression": {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "grid": {"C": [1.0]},
            }
        },
        **changes,
    )


def _kedro_cli(project):
    """`kedro run --pipelines tuning` as a user runs it, with the project's console logging:
    what they see is its stderr."""
    shutil.copy(PROJECT_ROOT / "conf/logging.yml", project / "conf/logging.yml")
    return kedro_cli(project, "run", "--pipelines", "tuning", env={"PYTHONWARNINGS": "ignore"})


def _open(path):
    return JournalStorage(JournalFileBackend(str(path)))


def test_a_journal_cut_off_by_a_crash_resumes_twice(project_copy):
    write_local_parameters(project_copy, _tiny())
    run_kedro(project_copy, "tuning")
    journal = project_copy / JOURNAL
    whole = journal.read_bytes()
    last = whole.splitlines(keepends=True)[-1]  # the last trial's result
    fragment = len(last) // 2
    cut = whole[: len(whole) - len(last) + fragment]  # killed half-way through that append
    journal.write_bytes(cut)

    resumed = _kedro_cli(project_copy)
    assert resumed.returncode == 0, resumed.stderr[-3000:]
    (backup,) = journal.parent.glob("tuning_study.journal.*.backup")
    assert backup.read_bytes() == cut
    assert journal.read_bytes().startswith(cut[:-fragment])
    assert (
        f"The tuning journal {journal} ended in a line cut off by a crash ({fragment} bytes, "
        f"trimmed); the journal as it was is kept in {backup}"
    ) in " ".join(resumed.stderr.split())

    run_kedro(project_copy, "tuning")  # the second resume reads every line
    assert list(journal.parent.glob("tuning_study.journal.*.backup")) == [backup]
    trials = pd.read_csv(project_copy / "data/08_reporting/tuning_trials.csv")
    assert trials["number"].tolist() == list(range(6))
    # The cut line was trial 1's result: the study never got it, so the trial stays
    # running (until tuning.stale_after), and both resumes added their two trials.
    assert trials.loc[1, "state"] == "running"
    assert set(trials.loc[trials.index != 1, "state"]) <= {"complete", "fail"}


def _damaged_journal(path):
    """A study whose second line was cut by a crash and glued onto by the next append."""
    study = optuna.create_study(study_name="test", storage=_open(path), direction="maximize")
    for value in (0.5, 0.6, 0.7):
        study.add_trial(optuna.trial.create_trial(value=value))
    lines = path.read_bytes().splitlines(keepends=True)
    lines[1:3] = [lines[1][:30] + lines[2]]
    path.write_bytes(b"".join(lines))


def test_a_journal_damaged_before_its_last_line_stops_the_run_with_the_remedy(project_copy):
    write_local_parameters(project_copy, _tiny())
    journal = project_copy / JOURNAL
    journal.parent.mkdir(parents=True)
    _damaged_journal(journal)
    damaged = journal.read_bytes()
    with pytest.raises(json.JSONDecodeError):  # what Optuna alone says: no file, no remedy
        optuna.load_study(study_name="test", storage=_open(journal))

    run = _kedro_cli(project_copy)
    assert run.returncode != 0
    said = " ".join(run.stderr.split())
    assert "DamagedJournalError" in said
    assert f"The tuning journal {journal} is damaged at line 2, column " in said
    assert "Expecting ',' delimiter" in said
    assert "a new tuning.study_name alone does not help" in said
    assert f"run again to start a new study: `mv {journal} {journal}.damaged`" in said
    assert "or restore a copy of the journal from before the damage" in said
    # Nothing was changed or trialled on a journal that cannot be read.
    assert journal.read_bytes() == damaged
    assert not list(journal.parent.glob("*.backup"))
    assert not (project_copy / "data/08_reporting/tuning_trials.csv").exists()


def test_the_repair_names_the_backups_a_damaged_journal_can_be_restored_from(tmp_path):
    journal = tmp_path / "study.journal"
    _damaged_journal(journal)
    journal.write_bytes(journal.read_bytes() + b'{"op_code": 6, "trial')  # and a cut-off end
    with pytest.raises(DamagedJournalError, match="Expecting") as error:
        repair_journal(journal)
    (backup,) = tmp_path.glob("study.journal.*.backup")
    assert f"copies kept when a cut-off line was trimmed: {backup}" in str(error.value)
    assert not journal.read_bytes().endswith(b'"trial')


def test_the_repair_waits_for_a_driver_appending_under_the_journal_lock(tmp_path):
    """A line without its end may be another driver's append in progress: only what is
    still cut off once the journal's lock is free is trimmed."""
    journal = tmp_path / "study.journal"
    optuna.create_study(study_name="test", storage=_open(journal))
    line = json.dumps({"op_code": 8, "worker_id": "w", "trial_id": 0, "user_attr": {"a": 1}})
    lock = JournalFileSymlinkLock(str(journal))  # the lock JournalFileBackend appends under
    lock.acquire()
    with journal.open("ab") as appending:
        appending.write(line[:20].encode())
        appending.flush()
        repair = threading.Thread(target=repair_journal, args=(journal,))
        repair.start()
        time.sleep(0.5)
        assert repair.is_alive()  # waiting for the lock, not trimming a line being written
        appending.write(line[20:].encode() + b"\n")
    lock.release()
    repair.join(timeout=10)
    assert not repair.is_alive()
    assert journal.read_bytes().endswith(line.encode() + b"\n")
    assert not list(tmp_path.glob("*.backup"))
    assert len(optuna.load_study(study_name="test", storage=_open(journal)).trials) == 0
