"""Who runs a trial: the driver each trial records, whether it still runs, and the
trials of dead drivers failed.

Every trial records the driver that asked for it (``this_driver``: host, pid numbering, pid,
process start), so that a run that finds the trial RUNNING later can tell whether its driver
died (``driver_gone``). Trials left running by a dead driver are failed as a run opens the
study (``fail_stale_trials``): on a database by heartbeat; on a journal when their driver, on
this host, no longer runs, else by age. A driver keeps account of its own open trials
(``DriverTrials``): it marks them, beats for them, and fails them when it is interrupted.

Apart from ``study``, which holds where a study is stored and what identifies it: neither
depends on which process runs the trials. ``study`` imports this module (``load_study`` fails
the stale trials), never the reverse, and ``executor`` keeps its account in ``DriverTrials``.
Only the tuning modules import it, and the nodes import those inside the node functions: other
pipelines must not pay for optuna at start-up.
"""

from __future__ import annotations

import contextlib
import logging
import os
import socket
import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

# The study's logger: these warnings are about the study's trials, docs/tuning.md quotes the
# name, and a logging config may filter on it.
logger = logging.getLogger(f"{__package__}.study")

# The trial's driver: {"host", "pids", "pid", "started"} (see this_driver).
DRIVER = "driver"


def fail_stale_trials(study: Any, storage: Any, stale_after: float) -> list[int]:
    """Fails the trials of dead drivers, logs how many and why; returns their numbers.

    A database storage has heartbeats: Optuna fails the trials whose driver stopped beating
    for the grace period. A journal has none. There a trial is failed when its driver ran on
    this host and no longer runs (its pid is gone, or now belongs to a later process), or
    else when it has been RUNNING for longer than ``stale_after`` seconds: a driver on
    another host cannot be checked from here, and may still be running its trials. By
    heartbeat, process or age, never by restarting: another driver sharing the study may be
    running its own trials.
    """
    if heartbeat_interval(storage):
        running = _running(study)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        reasons = dict.fromkeys(
            sorted(running & failed), "no heartbeat for tuning.heartbeat.grace_period seconds"
        )
    else:
        reasons = _fail_orphans(study, storage, stale_after)
    if reasons:
        grouped: dict[str, list[int]] = {}
        for number, reason in reasons.items():
            grouped.setdefault(reason, []).append(number)
        logger.warning(
            "%d trial(s) left running by a run that died were failed: %s",
            len(reasons),
            "; ".join(f"{_numbers(n)}: {reason}" for reason, n in grouped.items()),
        )
    return sorted(reasons)


def _fail_orphans(study: Any, storage: Any, stale_after: float) -> dict[int, str]:
    now = datetime.now()
    reasons = {}
    for trial in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
        reason = driver_gone(trial.user_attrs.get(DRIVER))
        if reason is None and trial.datetime_start:
            age = (now - trial.datetime_start).total_seconds()
            if age > stale_after:
                reason = f"running for {age:.0f} s, longer than tuning.stale_after"
        if reason is not None:
            reasons[trial.number] = reason
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = {}
    for number, reason in reasons.items():
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, number)
        # Its driver may have been alive after all (another host), and have just told it.
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_user_attr(trial_id, "error", f"stale: {reason}")
            study.tell(number, state=TrialState.FAIL)
            failed[number] = reason
    return failed


def _numbers(numbers: list[int]) -> str:
    return f"trial{'s' if len(numbers) > 1 else ''} {', '.join(map(str, sorted(numbers)))}"


def this_driver() -> dict[str, Any]:
    """This process as the driver of a trial, in the terms ``driver_gone`` checks later.

    A pid alone names a process only while it runs: it is reused. The process start time
    tells a later process under the same pid apart, and the host name with ``pids`` (which
    numbering the pid belongs to) tells where it can be checked at all.
    """
    pid = os.getpid()
    return {
        "host": socket.gethostname(),
        "pids": _pid_space(),
        "pid": pid,
        "started": _started(pid),
    }


def driver_gone(driver: Mapping[str, Any] | None) -> str | None:
    """Why the driver recorded on a trial no longer runs; None when it runs, or when that
    cannot be known from here (another host, no record, or an OS without /proc or signals).
    """
    if not _checkable_here(driver):
        return None
    why = _process_ended(driver["pid"], driver.get("started"))
    return f"its driver, pid {driver['pid']} on {driver['host']}, {why}" if why else None


def _checkable_here(driver: Mapping[str, Any] | None) -> bool:
    # os.kill(pid, 0) would end the process on Windows; pid 0 or below names a group.
    return (
        bool(driver)
        and os.name == "posix"
        and driver.get("host") == socket.gethostname()
        # Another machine of the same name, a container or an earlier boot: its pids mean
        # nothing here.
        and driver.get("pids") == _pid_space()
        and isinstance(driver.get("pid"), int)
        and driver["pid"] > 0
    )


def _process_ended(pid: int, started: int | None) -> str | None:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return "no longer runs"
    except PermissionError:
        pass  # a process of another user: it exists
    stat = _proc_stat(pid)
    if stat is None:
        return None  # no /proc (macOS, BSD): the live pid may be the driver's or a later one
    if stat[0] in ("Z", "X"):
        return "has exited"
    if started is not None and int(stat[19]) != started:
        return "no longer runs (its pid now belongs to a later process)"
    return None


def _pid_space() -> str | None:
    """Which numbering this process's pid belongs to: the kernel's boot and the pid namespace
    (Linux). Two containers, or two boots, of one host name number their processes apart.
    None where there is no /proc: then the host name alone."""
    try:
        boot = Path("/proc/sys/kernel/random/boot_id").read_text().strip()
        namespace = os.readlink("/proc/self/ns/pid")
    except OSError:
        return None
    return f"{boot} {namespace}"


def _started(pid: int) -> int | None:
    """The process's start, in clock ticks after boot (/proc/<pid>/stat field 22)."""
    stat = _proc_stat(pid)
    return int(stat[19]) if stat else None


def _proc_stat(pid: int) -> list[str] | None:
    """/proc/<pid>/stat from field 3 (the state) on; None without /proc or without the pid."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    # Field 2, the command name in parentheses, may itself hold spaces and parentheses.
    return text[text.rindex(")") + 2 :].split()


def heartbeat_interval(storage: Any) -> int | None:
    """Seconds between heartbeats for a storage that has them (a database), else None."""
    get = getattr(storage, "get_heartbeat_interval", None)
    return get() if get is not None else None


def _running(study: Any) -> set[int]:
    return {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))}


class DriverTrials:
    """The trials this driver asked for and has not told yet.

    Each is marked with the driver (``this_driver``) as it is asked, so that a later run on
    this host can fail it if the driver dies. With a database storage each also gets its first
    heartbeat when it is asked (Optuna never counts as stale a trial that has none), and then
    one every ``interval`` while the driver waits, as ``study.optimize`` would give; the driver
    also fails the trials of other drivers that stopped beating. ``fail_all`` fails whatever
    is left when the driver stops early.
    """

    def __init__(self, study: Any, storage: Any, stale_after: float) -> None:
        self._study = study
        self._storage = storage
        self._stale_after = stale_after
        self._driver = this_driver()
        self.interval = heartbeat_interval(storage)
        self._study_id = storage.get_study_id_from_name(study.study_name) if self.interval else 0
        self._open: dict[int, Any] = {}
        self._ids: dict[int, int] = {}
        self._last = time.monotonic()

    def ask(self) -> Any:
        with warnings.catch_warnings():
            # "Heartbeat of storage is supposed to be used with Study.optimize": this
            # driver beats itself.
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = self._study.ask()
        self._open[trial.number] = trial
        trial.set_user_attr(DRIVER, self._driver)
        if self.interval:
            self._ids[trial.number] = self._storage.get_trial_id_from_study_id_trial_number(
                self._study_id, trial.number
            )
            self._storage.record_heartbeat(self._ids[trial.number])
        return trial

    def told(self, trial: Any) -> None:
        self._open.pop(trial.number, None)
        self._ids.pop(trial.number, None)

    def wait(self) -> float | None:
        """Seconds until the next beat is due (None: no heartbeats, wait for a result)."""
        if not self.interval:
            return None
        return max(0.0, self._last + self.interval - time.monotonic())

    def beat(self) -> None:
        if not self.interval or time.monotonic() < self._last + self.interval:
            return
        self._last = time.monotonic()
        for trial_id in self._ids.values():
            self._storage.record_heartbeat(trial_id)
        fail_stale_trials(self._study, self._storage, self._stale_after)

    def fail_all(self, cause: BaseException) -> list[int]:
        """Fails every open trial, saying why; returns their numbers."""
        why = str(cause) or type(cause).__name__
        failed = []
        for trial in list(self._open.values()):
            # Told already (e.g. failed as stale by another driver): nothing to do.
            with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
                trial.set_user_attr(
                    "error", f"interrupted: the run stopped before the trial ended ({why})"
                )
                self._study.tell(trial, state=TrialState.FAIL, skip_if_finished=True)
                failed.append(trial.number)
            self.told(trial)
        if failed:
            logger.warning("The run stopped (%s): %s failed", why, _numbers(failed))
        return failed
