"""A study's progress: one bar on a terminal (trials or seconds against the budget, counts by
state, the best CV accuracy so far), and one line per trial in the trials log, not on the
console."""

from __future__ import annotations

import io
import logging
import sys

import optuna
import pytest
from optuna.trial import TrialState, create_trial

from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.pipelines.tuning.progress import TRIAL_LOG, StudyProgress

from .conftest import tiny_blocks


class _Terminal(io.StringIO):
    def isatty(self) -> bool:
        return True


class _Lines(logging.Handler):
    def __init__(self) -> None:
        super().__init__(logging.INFO)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(record.getMessage())


@pytest.fixture
def trial_lines(monkeypatch) -> list[str]:
    """The trials log's lines (kept off the project's logs/tuning.log)."""
    handler = _Lines()
    monkeypatch.setattr(logging.getLogger(TRIAL_LOG), "handlers", [handler])
    return handler.lines


def _study_with_a_best(value: float) -> optuna.Study:
    study = optuna.create_study(study_name="demo", direction="maximize")
    study.add_trial(create_trial(state=TrialState.COMPLETE, value=value))
    return study


def _tell(study: optuna.Study, progress: StudyProgress, state: TrialState, value=None) -> None:
    study.add_trial(
        create_trial(state=state, value=value, user_attrs={"values": {"model.dropout": 0.1}})
    )
    progress.told(study.trials[-1])


def test_the_bar_counts_trials_by_state_and_the_best_so_far(monkeypatch, trial_lines):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    study = _study_with_a_best(0.9)  # an earlier run's
    tuning = TuningParams.model_validate(tiny_blocks(n_trials=3, timeout=60)["tuning"])

    progress = StudyProgress(study, tuning, show=True)
    assert "best=0.9000" in terminal.getvalue()
    _tell(study, progress, TrialState.COMPLETE, 0.95)
    _tell(study, progress, TrialState.PRUNED)
    _tell(study, progress, TrialState.FAIL)
    shown = terminal.getvalue()
    progress.finished(3)

    last = shown.split("\r")[-1]
    assert "study demo" in last and "3/3" in last, last
    for part in ("complete=1", "pruned=1", "failed=1", "best=0.9500", "left="):
        assert part in last, last
    assert (
        trial_lines[0]
        == "study demo: a run of up to 3 trials or 60 s on " + (trial_lines[0].split(" on ", 1)[1])
    )
    assert [line.split(":")[0] for line in trial_lines[1:4]] == [
        "trial 1 complete",
        "trial 2 pruned",
        "trial 3 fail",
    ]
    assert trial_lines[4].startswith("study demo: 3 trials in ")
    assert trial_lines[4].endswith(
        "(1 complete, 1 pruned, 1 failed); best CV accuracy 0.9500 (trial 1)"
    )


def test_with_a_timeout_and_no_trial_budget_the_bar_counts_seconds(monkeypatch, trial_lines):
    terminal = _Terminal()
    monkeypatch.setattr(sys, "stderr", terminal)
    study = _study_with_a_best(0.9)
    tuning = TuningParams.model_validate(tiny_blocks(n_trials=None, timeout=90)["tuning"])

    progress = StudyProgress(study, tuning, show=True)
    assert progress.wait() is not None  # its clock moves while no trial ends
    _tell(study, progress, TrialState.COMPLETE, 0.8)
    progress.tick()
    progress.close()

    assert "/90 s" in terminal.getvalue()


@pytest.mark.parametrize(("stream", "show"), [(io.StringIO, True), (_Terminal, False)])
def test_no_bar_off_a_terminal_or_with_training_progress_off(
    monkeypatch, trial_lines, stream, show
):
    console = stream()
    monkeypatch.setattr(sys, "stderr", console)
    study = _study_with_a_best(0.9)
    tuning = TuningParams.model_validate(tiny_blocks(n_trials=2, timeout=60)["tuning"])

    progress = StudyProgress(study, tuning, show=show)
    assert progress.wait() is None  # nothing to refresh
    _tell(study, progress, TrialState.COMPLETE, 0.8)
    progress.finished(1)

    assert console.getvalue() == ""
    assert trial_lines[1].startswith("trial 1 complete: CV accuracy 0.8000")
