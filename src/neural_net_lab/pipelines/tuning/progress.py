"""A study's progress: one bar on the terminal, one line per trial in the log file.

The bar counts this run's trials against ``tuning.n_trials`` (or, with a ``timeout`` and no
trial budget, the seconds against the timeout), with the complete, pruned and failed counts
and the best CV accuracy so far; the driver sees every result, so it moves for a remote
cluster too. It shows with ``training.progress`` on a terminal only: redirected to a file or
a CI log, a bar is a stream of carriage returns, and the lines below say the same.

Each trial's line goes to the logger ``TRIAL_LOG``, which ``conf/logging.yml`` sends to
``logs/tuning.log`` only: a 200-trial study would otherwise print 200 lines on the console.
Without the project's logging configuration, the lines reach the console as any log line.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
from collections import Counter
from pathlib import Path
from typing import Any

from optuna.trial import TrialState
from tqdm.auto import tqdm
from tqdm.contrib.logging import logging_redirect_tqdm

from .config import TuningParams
from .reports import trial_line

TRIAL_LOG = "neural_net_lab.pipelines.tuning.trials"

logger = logging.getLogger(__name__)
trials_logger = logging.getLogger(TRIAL_LOG)

# How often the bar's clock moves while no trial ends, when it shows time.
_TICK_S = 1.0


class StudyProgress:
    """The bar and the log lines of one run of the study (``told`` after each result)."""

    def __init__(self, study: Any, tuning: TuningParams, *, show: bool) -> None:
        self._name = study.study_name
        self._n_trials = tuning.n_trials
        self._timeout = tuning.timeout
        self._started = time.monotonic()
        self._counts: Counter[str] = Counter()
        complete = study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,))
        best = max(complete, key=lambda t: t.value, default=None)
        self._best = best.value if best else None
        self._best_trial = best.number if best else None
        timed = self._n_trials is None
        # disable=None: tqdm shows the bar on a terminal only.
        self._bar = tqdm(
            total=self._timeout if timed else self._n_trials,
            desc=f"study {self._name}",
            unit="s" if timed else "trial",
            bar_format="{desc}: {percentage:3.0f}%|{bar}| {n:.0f}/{total:.0f} s{postfix}"
            if timed
            else None,
            disable=None if show else True,
            leave=False,
        )
        # Log lines (a warning, a stale trial) print above the bar instead of through it.
        self._redirect = contextlib.ExitStack()
        if not self._bar.disable:
            self._redirect.enter_context(logging_redirect_tqdm())
        _make_log_folders(trials_logger)
        trials_logger.info(
            "study %s: a run of up to %s on %s, pid %d: %d trials so far",
            self._name,
            _budget(self._n_trials, self._timeout),
            socket.gethostname(),
            os.getpid(),
            len(study.get_trials(deepcopy=False)),
        )
        self._show()

    def told(self, trial: Any) -> None:
        """One trial of this run has ended (it is in the study)."""
        trials_logger.info(trial_line(trial))
        self._counts[trial.state.name] += 1
        if trial.state == TrialState.COMPLETE and (self._best is None or trial.value > self._best):
            self._best, self._best_trial = trial.value, trial.number
        if self._n_trials is not None:
            self._bar.update(1)
        self._show()

    def wait(self) -> float | None:
        """Seconds until the bar's clock should move (None: only results move it)."""
        return _TICK_S if self._timeout and not self._bar.disable else None

    def tick(self) -> None:
        if self._timeout and not self._bar.disable:
            self._show()

    def finished(self, asked: int) -> None:
        """The run's trials have all ended: the closing line, on the console and in the log."""
        counts = ", ".join(
            f"{self._counts[state]} {word}"
            for state, word in (("COMPLETE", "complete"), ("PRUNED", "pruned"), ("FAIL", "failed"))
        )
        best = (
            f"best CV accuracy {self._best:.4f} (trial {self._best_trial})"
            if self._best is not None
            else "no complete trial"
        )
        line = f"{asked} trials in {time.monotonic() - self._started:.1f} s ({counts}); {best}"
        self.close()
        logger.info("%s", line)
        trials_logger.info("study %s: %s", self._name, line)

    def close(self) -> None:
        self._bar.close()
        self._redirect.close()

    def _show(self) -> None:
        if self._bar.disable:
            return
        postfix = {
            "complete": self._counts["COMPLETE"],
            "pruned": self._counts["PRUNED"],
            "failed": self._counts["FAIL"],
            "best": f"{self._best:.4f}" if self._best is not None else "-",
        }
        elapsed = time.monotonic() - self._started
        if self._n_trials is None:
            self._bar.n = min(elapsed, self._timeout)
        elif self._timeout:
            postfix["left"] = f"{max(0.0, self._timeout - elapsed):.0f} s"
        self._bar.set_postfix(postfix, refresh=True)


def _budget(n_trials: int | None, timeout: float | None) -> str:
    limits = [f"{n_trials} trials"] if n_trials is not None else []
    limits += [f"{timeout:g} s"] if timeout else []
    return " or ".join(limits)


def _make_log_folders(log: logging.Logger) -> None:
    """The folders of the logger's log files (``logs/``), made as they are first needed: a
    file handler opened lazily (``delay: true``) does not make them."""
    for handler in log.handlers:
        if isinstance(handler, logging.FileHandler):
            Path(handler.baseFilename).parent.mkdir(parents=True, exist_ok=True)
