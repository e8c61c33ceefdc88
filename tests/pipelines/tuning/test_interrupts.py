"""A driver that stops leaves no trial running for good.

Ctrl-C (SIGINT) or SIGTERM fails every trial the driver asked for and did not tell, even
when the signal comes while a trial is being asked for or told; a driver killed outright
(SIGKILL) leaves its trials running, and the next run on the same host fails them, by the
driver's pid and process start recorded on each trial, while another live driver's trial is
left alone. Real ``kedro run`` processes, a real journal and a real Dask LocalCluster.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import optuna
import pandas as pd
import pytest

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.pipelines.tuning import drivers, executor
from neural_net_lab.pipelines.tuning import study as studies
from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.pipelines.tuning.nodes import prepare_folds, run_study

from .conftest import tiny_blocks, write_local_parameters
from .two_drivers import (
    TRIAL_LINE,
    held_by,
    slow_blocks,
    start_in_session,
    stop,
    wait_for_a_running_trial,
    wait_for_a_trial_line,
)

JOURNAL = "data/07_model_output/tuning_study.journal"


def _journal_trials(path: Path) -> list:
    storage = optuna.storages.JournalStorage(optuna.storages.journal.JournalFileBackend(str(path)))
    return optuna.load_study(study_name="test", storage=storage).get_trials()


def _running(trials: list) -> list[int]:
    return [t.number for t in trials if t.state.name == "RUNNING"]


# In-process: a real study (a journal, or the suite's throwaway PostgreSQL) on a real
# LocalCluster, a real SIGINT sent to this process at a point inside each window; Python's own
# handler raises KeyboardInterrupt.


@pytest.fixture(scope="module")
def train_split(raw_phones) -> pd.DataFrame:
    return raw_phones.sample(400, random_state=0).reset_index(drop=True)


def _run(train_split, schema, storage: dict[str, str], **changes):
    blocks = tiny_blocks(dask={"n_workers": 1, "dashboard_address": None}, **changes)
    tuning = TuningParams.model_validate(blocks["tuning"])
    training = TrainingParams.model_validate(blocks["training"])
    model = ModelParams.model_validate(blocks["model"])
    cv_data, model = prepare_folds(train_split, schema, tuning, model, training)
    return run_study(
        cv_data=cv_data, storage=storage, tuning=tuning, model=model, training=training
    )


def _storage(kind: str, request, tmp_path: Path) -> tuple[dict[str, str], object]:
    """The study's storage as the catalog gives it, and what optuna.load_study opens."""
    if kind == "postgres":
        url = request.getfixturevalue("postgres")(f"interrupted_{tmp_path.name}".lower())
        return {"url": url}, url
    journal = tmp_path / "j.log"
    return {"path": str(journal)}, optuna.storages.JournalStorage(
        optuna.storages.journal.JournalFileBackend(str(journal))
    )


@pytest.fixture
def ctrl_c():
    """SIGINT handled as at a terminal: a test run started in the background inherits it
    ignored."""
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    yield
    signal.signal(signal.SIGINT, previous)


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


@pytest.mark.parametrize("kind", ["journal", "postgres"])
def test_ctrl_c_after_a_trial_is_asked_for_fails_it(
    kind, train_split, table_schema, tmp_path, monkeypatch, ctrl_c, request
):
    """The window between ``ask`` and the trial's entry among the pending ones: the signal
    comes while the trial's values are drawn. On a database too, without waiting for the
    heartbeats' grace period."""
    storage, opened = _storage(kind, request, tmp_path)
    seen = _interrupt_at_call(monkeypatch, "suggest", call=3)
    with pytest.raises(KeyboardInterrupt):
        _run(train_split, table_schema, storage)
    trials = {t.number: t for t in optuna.load_study(study_name="test", storage=opened).trials}
    assert _running(trials.values()) == []
    asked = trials[seen[-1]]
    assert asked.state.name == "FAIL"
    assert asked.user_attrs["error"].startswith("interrupted: the run stopped before the trial")
    assert asked.user_attrs[drivers.DRIVER]["pid"] == os.getpid()


def test_ctrl_c_while_a_result_is_told_keeps_the_result(
    train_split, table_schema, tmp_path, monkeypatch, ctrl_c
):
    """The window between leaving the pending trials and the end of ``_record``: the result
    that came is recorded whole, then the run stops."""
    seen = _interrupt_at_call(monkeypatch, "_record", call=2)
    with pytest.raises(KeyboardInterrupt):
        _run(train_split, table_schema, {"path": str(tmp_path / "j.log")})
    trials = {t.number: t for t in _journal_trials(tmp_path / "j.log")}
    assert _running(trials.values()) == []
    told = trials[seen[-1]]
    assert told.state.name in ("COMPLETE", "FAIL")
    assert not told.user_attrs.get("error", "").startswith("interrupted"), told.user_attrs
    assert "worker" in told.user_attrs  # its worker's result, not the interruption


@pytest.mark.skipif(not Path("/proc/self/stat").exists(), reason="reads pids' start in /proc")
def test_a_running_trial_is_failed_only_when_its_driver_here_is_gone(tmp_path, caplog):
    """Real processes: one that ended (its pid gone), one that exited unreaped (a zombie),
    and this one, whose pid a trial records with another start time (as a reused pid would
    show); against this live process, and gone drivers of another host or pid space."""
    storage = studies.open_storage({"path": str(tmp_path / "j.log")})
    tuning = TuningParams.model_validate(tiny_blocks()["tuning"])
    study = studies.load_study(storage, tuning, "print", create=True)
    me = drivers.this_driver()
    ended = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"],
        capture_output=True,
        text=True,
        check=True,
    )
    gone = {**me, "pid": int(ended.stdout), "started": None}
    zombie = subprocess.Popen(["true"])  # never waited for until the end: a zombie
    stat = Path(f"/proc/{zombie.pid}/stat")
    deadline = time.monotonic() + 10
    while stat.read_text().rsplit(")", 1)[1].split()[0] != "Z" and time.monotonic() < deadline:
        time.sleep(0.01)
    recorded = {
        "live": me,
        "gone": gone,
        "exited": {**me, "pid": zombie.pid, "started": None},
        "reused": {**me, "started": me["started"] - 1},
        "elsewhere": {**gone, "host": f"not-{me['host']}"},
        "other pids": {**gone, "pids": "another boot or container"},
        "unmarked": None,
    }
    numbers = {}
    for name, driver in recorded.items():
        trial = study.ask()
        if driver is not None:
            trial.set_user_attr(drivers.DRIVER, driver)
        numbers[name] = trial.number
    try:
        with caplog.at_level("WARNING", logger="neural_net_lab.pipelines.tuning.study"):
            failed = drivers.fail_stale_trials(study, storage, stale_after=3600)
    finally:
        zombie.wait()

    assert failed == [numbers["gone"], numbers["exited"], numbers["reused"]]
    errors = {t.number: t.user_attrs.get("error") for t in study.get_trials()}
    host = me["host"]
    assert (
        errors[numbers["gone"]] == f"stale: its driver, pid {gone['pid']} on {host}, no longer runs"
    )
    assert errors[numbers["exited"]] == f"stale: its driver, pid {zombie.pid} on {host}, has exited"
    assert "its pid now belongs to a later process" in errors[numbers["reused"]]
    for name in ("live", "elsewhere", "other pids", "unmarked"):
        assert study.trials[numbers[name]].state.name == "RUNNING", name
    assert "3 trial(s) left running by a run that died were failed" in caplog.text
    assert f"trial {numbers['gone']}: its driver, pid {gone['pid']}" in caplog.text


# Real processes: `kedro run` drivers in a session of their own (a terminal's Ctrl-C
# reaches the whole foreground group: the driver and its Dask workers).


def _resume(project: Path, tmp_path: Path, n_trials: int) -> str:
    """A run that opens the study and adds ``n_trials``; its console, which shows no trial's
    line (those are in the tuning log, with the closing line)."""
    write_local_parameters(project, slow_blocks(n_trials=n_trials))
    output = tmp_path / "resumed.log"
    resumed = start_in_session(project, output)
    resumed.wait(timeout=300)
    console = output.read_text()
    assert resumed.returncode == 0, console[-4000:]
    assert not TRIAL_LINE.search(console), console[-4000:]
    if n_trials:
        assert f"{n_trials} trials in" in console, console[-4000:]
        log = (project / "logs/tuning.log").read_text()
        assert f"study test: {n_trials} trials in" in log and len(TRIAL_LINE.findall(log)) >= 2
    return console


def test_ctrl_c_mid_study_leaves_no_trial_running_and_the_study_resumes(project_copy, tmp_path):
    write_local_parameters(project_copy, slow_blocks())
    output = tmp_path / "interrupted.log"
    driver = start_in_session(project_copy, output)
    wait_for_a_trial_line(project_copy, driver, output)
    wait_for_a_running_trial(driver, output, lambda: _journal_trials(project_copy / JOURNAL))
    stop(driver, signal.SIGINT)

    assert driver.returncode != 0
    assert "run interrupted by SIGINT" in output.read_text(), output.read_text()[-4000:]
    trials = _journal_trials(project_copy / JOURNAL)
    assert _running(trials) == []
    errors = [t.user_attrs.get("error", "") for t in trials]
    assert any(e.startswith("interrupted") and "SIGINT" in e for e in errors), errors

    _resume(project_copy, tmp_path, n_trials=1)
    resumed = _journal_trials(project_copy / JOURNAL)
    assert len(resumed) == len(trials) + 1
    assert _running(resumed) == []


LIVE_DRIVER = """
import sys
import optuna
from neural_net_lab.pipelines.tuning import drivers, study as studies

storage = studies.open_storage({"path": sys.argv[1]})
print("ready", flush=True)
sys.stdin.readline()
study = optuna.load_study(study_name="test", storage=storage)
trial = drivers.DriverTrials(study, storage, stale_after=3600).ask()
print(trial.number, flush=True)
sys.stdin.readline()  # runs its trial until the test lets it go
"""


def test_a_killed_drivers_trials_are_failed_on_resume_and_a_live_drivers_are_not(
    project_copy, tmp_path
):
    write_local_parameters(project_copy, slow_blocks())
    output = tmp_path / "killed.log"
    driver = start_in_session(project_copy, output)
    # Another driver of the same study on this host, alive throughout: it holds one trial.
    live = subprocess.Popen(
        [sys.executable, "-c", LIVE_DRIVER, str(project_copy / JOURNAL)],
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        text=True,
    )
    try:
        assert live.stdout.readline().strip() == "ready"
        wait_for_a_trial_line(project_copy, driver, output)
        live.stdin.write("ask\n")
        live.stdin.flush()
        live_trial = int(live.stdout.readline())
        wait_for_a_running_trial(driver, output, lambda: _journal_trials(project_copy / JOURNAL))
        stop(driver, signal.SIGKILL)  # a lost machine: the driver and its workers at once

        before = _journal_trials(project_copy / JOURNAL)
        left = _running(before)
        killed = [t.number for t in before if held_by(t, driver.pid)]
        assert killed and set(left) == {*killed, live_trial}, (left, killed, live_trial)

        # A run that only opens the study (n_trials: 0, no cluster) fails them.
        log = _resume(project_copy, tmp_path, n_trials=0)
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
