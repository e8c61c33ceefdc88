"""A driver that stops leaves no trial running for good.

Ctrl-C (SIGINT) or SIGTERM fails every trial the driver asked for and did not tell, even
when the signal comes while a trial is being asked for or told; a driver killed outright
(SIGKILL) leaves its trials running, and the next run on the same host fails them, by the
driver's pid and process start recorded on each trial, while another live driver's trial is
left alone. Real ``kedro run`` processes, a real journal and a real Dask LocalCluster.
"""

from __future__ import annotations

import os
import re
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from neural_net_lab.engine.config import ColumnsParams, ModelParams, TrainingParams
from neural_net_lab.pipelines.tuning import executor
from neural_net_lab.pipelines.tuning import study as studies
from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.pipelines.tuning.nodes import prepare_folds, run_study
from tests.conftest import COLUMNS

from .conftest import tiny_blocks, write_local_parameters
from .two_drivers import small_blocks, start_driver

JOURNAL = "data/07_model_output/tuning_study.journal"
TRIAL_LINE = re.compile(r" trial \d+ (complete|pruned|fail):")


def _journal_trials(path: Path) -> list:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.load_study(study_name="test", storage=storage).get_trials()


def _running(trials: list) -> list[int]:
    return [t.number for t in trials if t.state.name == "RUNNING"]


# In-process: a real journal study on a real LocalCluster, a real SIGINT sent to this process
# at a point inside each window; Python's own handler raises KeyboardInterrupt.


@pytest.fixture(scope="module")
def train_split(raw_phones) -> pd.DataFrame:
    return raw_phones.sample(400, random_state=0).reset_index(drop=True)


def _run(train_split, journal: Path, **changes):
    blocks = tiny_blocks(dask={"n_workers": 1, "dashboard_address": None}, **changes)
    tuning = TuningParams.model_validate(blocks["tuning"])
    model = ModelParams.model_validate(blocks["model"])
    training = TrainingParams.model_validate(blocks["training"])
    columns = ColumnsParams.model_validate(COLUMNS)
    cv_data = prepare_folds(train_split, columns, tuning, model, training)
    return run_study(
        cv_data=cv_data,
        storage={"path": str(journal)},
        tuning=tuning,
        model=model,
        training=training,
    )


def _interrupt_at_call(monkeypatch, name: str, call: int) -> list[int]:
    """SIGINT to this process at the ``call``-th call of ``executor.<name>``; returns the
    numbers of the trials it was called for."""
    original = getattr(executor, name)
    seen: list[int] = []

    def interrupting(*args, **kwargs):
        trial = next(a for a in args if hasattr(a, "number"))
        seen.append(trial.number)
        if len(seen) == call:
            os.kill(os.getpid(), signal.SIGINT)
        return original(*args, **kwargs)

    monkeypatch.setattr(executor, name, interrupting)
    return seen


def test_ctrl_c_after_a_trial_is_asked_for_fails_it(train_split, tmp_path, monkeypatch):
    """The window between ``ask`` and the trial's entry among the pending ones: the signal
    comes while the trial's values are drawn."""
    seen = _interrupt_at_call(monkeypatch, "suggest", call=3)
    with pytest.raises(KeyboardInterrupt):
        _run(train_split, tmp_path / "j.log")
    trials = {t.number: t for t in _journal_trials(tmp_path / "j.log")}
    assert _running(trials.values()) == []
    asked = trials[seen[-1]]
    assert asked.state.name == "FAIL"
    assert asked.user_attrs["error"].startswith("interrupted: the run stopped before the trial")
    assert asked.user_attrs[studies.DRIVER]["pid"] == os.getpid()


def test_ctrl_c_while_a_result_is_told_keeps_the_result(train_split, tmp_path, monkeypatch):
    """The window between leaving the pending trials and the end of ``_record``: the result
    that came is recorded whole, then the run stops."""
    seen = _interrupt_at_call(monkeypatch, "_record", call=2)
    with pytest.raises(KeyboardInterrupt):
        _run(train_split, tmp_path / "j.log")
    trials = {t.number: t for t in _journal_trials(tmp_path / "j.log")}
    assert _running(trials.values()) == []
    told = trials[seen[-1]]
    assert told.state.name in ("COMPLETE", "FAIL")
    assert not told.user_attrs.get("error", "").startswith("interrupted"), told.user_attrs
    assert "worker" in told.user_attrs  # its worker's result, not the interruption


# Real processes: `kedro run` drivers in a session of their own (a terminal's Ctrl-C
# reaches the whole foreground group: the driver and its Dask workers).


def _slow_trials(**changes):
    """Trials of a second or more (no diverging optimizer), one worker: a signal sent just
    after a trial is asked for lands in the middle of it."""
    space = {"model.hidden_dims": {"type": "categorical", "choices": [[8], [16, 8]]}}
    blocks = small_blocks(**{"n_trials": 40, "search_space": space, **changes})
    blocks["training"]["epochs"] = 500
    return blocks


def _start(project: Path, output: Path) -> subprocess.Popen:
    with output.open("w") as out:
        return start_driver(
            project, {}, "--to-nodes", "run_study", output=out, start_new_session=True
        )


def _wait_for_a_trial_line(project: Path, driver: subprocess.Popen, output: Path) -> None:
    """Until the driver has ended a trial (its line in logs/tuning.log)."""
    log = project / "logs/tuning.log"
    _wait(lambda: log.exists() and TRIAL_LINE.search(log.read_text()), driver, output)


def _wait_for_a_running_trial(project: Path, driver: subprocess.Popen, output: Path) -> None:
    """Until the driver holds a trial (RUNNING in the journal, marked with its pid): a trial
    lasts a second or more, so a signal sent now lands in the middle of it."""
    journal = project / JOURNAL
    _wait(lambda: any(_held_by(t, driver.pid) for t in _journal_trials(journal)), driver, output)


def _wait(condition, driver: subprocess.Popen, output: Path) -> None:
    deadline = time.monotonic() + 180
    while not condition():
        if driver.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the run ended, or did not get that far:\n{output.read_text()[-3000:]}")
        time.sleep(0.05)


def _held_by(trial, pid: int) -> bool:
    return (
        trial.state.name == "RUNNING" and trial.user_attrs.get(studies.DRIVER, {}).get("pid") == pid
    )


def _stop(driver: subprocess.Popen, signum: int) -> None:
    os.killpg(driver.pid, signum)
    try:
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()


def _resume(project: Path, tmp_path: Path) -> str:
    write_local_parameters(project, _slow_trials(n_trials=1))
    output = tmp_path / "resumed.log"
    resumed = _start(project, output)
    resumed.wait(timeout=300)
    assert resumed.returncode == 0, output.read_text()[-4000:]
    return output.read_text()


def test_ctrl_c_mid_study_leaves_no_trial_running_and_the_study_resumes(project_copy, tmp_path):
    write_local_parameters(project_copy, _slow_trials())
    output = tmp_path / "interrupted.log"
    driver = _start(project_copy, output)
    _wait_for_a_trial_line(project_copy, driver, output)
    _wait_for_a_running_trial(project_copy, driver, output)
    _stop(driver, signal.SIGINT)

    assert driver.returncode != 0
    assert "run interrupted by SIGINT" in output.read_text(), output.read_text()[-4000:]
    trials = _journal_trials(project_copy / JOURNAL)
    assert _running(trials) == []
    errors = [t.user_attrs.get("error", "") for t in trials]
    assert any(e.startswith("interrupted") and "SIGINT" in e for e in errors), errors

    _resume(project_copy, tmp_path)
    resumed = _journal_trials(project_copy / JOURNAL)
    assert len(resumed) == len(trials) + 1
    assert _running(resumed) == []


LIVE_DRIVER = """
import sys
import optuna
from neural_net_lab.pipelines.tuning import study as studies

storage = studies.open_storage({"path": sys.argv[1]})
print("ready", flush=True)
sys.stdin.readline()
study = optuna.load_study(study_name="test", storage=storage)
trial = studies.DriverTrials(study, storage, stale_after=3600).ask()
print(trial.number, flush=True)
sys.stdin.readline()  # runs its trial until the test lets it go
"""


def test_a_killed_drivers_trials_are_failed_on_resume_and_a_live_drivers_are_not(
    project_copy, tmp_path
):
    write_local_parameters(project_copy, _slow_trials())
    output = tmp_path / "killed.log"
    driver = _start(project_copy, output)
    # Another driver of the same study on this host, alive throughout: it holds one trial.
    live = subprocess.Popen(
        [sys.executable, "-c", LIVE_DRIVER, str(project_copy / JOURNAL)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert live.stdout.readline().strip() == "ready"
        _wait_for_a_trial_line(project_copy, driver, output)
        live.stdin.write("ask\n")
        live.stdin.flush()
        live_trial = int(live.stdout.readline())
        _wait_for_a_running_trial(project_copy, driver, output)
        _stop(driver, signal.SIGKILL)  # a lost machine: the driver and its workers at once

        before = _journal_trials(project_copy / JOURNAL)
        left = _running(before)
        killed = [t.number for t in before if _held_by(t, driver.pid)]
        assert killed and set(left) == {*killed, live_trial}, (left, killed, live_trial)

        log = _resume(project_copy, tmp_path)
        trials = {t.number: t for t in _journal_trials(project_copy / JOURNAL)}
        for number in killed:
            assert trials[number].state.name == "FAIL"
            assert trials[number].user_attrs["error"] == (
                f"stale: its driver, pid {driver.pid} on {socket.gethostname()}, no longer runs"
            )
        assert trials[live_trial].state.name == "RUNNING"
        assert _running(trials.values()) == [live_trial]
        assert f"{len(killed)} trial(s) left running by a run that died were failed" in log, log
    finally:
        live.kill()
        live.wait()
