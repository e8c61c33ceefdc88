"""The study: where it is stored, what identifies it, and its trials that outlive their run.

A study is opened on a journal file (repaired first if a crash cut its last line) or a
database; it carries the fingerprint of what its trial values depend on, so that a run with
another search space refuses it, and the fingerprint of its rows, so that a run on other data
goes to a sibling study of its own; it names its objective (``cv_accuracy``). Every trial
records the driver that asked for it (host, pid, process start). Trials left running by a
dead driver are failed as a run opens the study: on a database by heartbeat; on a journal
when their driver, on this host, no longer runs, else by age. A driver keeps account of its
own open trials (``DriverTrials``): it beats for them, and fails them when it is
interrupted. How trials are run is ``executor``'s business.

Only the tuning nodes import this module, inside the node functions: other pipelines must not
pay for optuna at start-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import os
import socket
import time
import warnings
from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from neural_net_lab.engine.config import ModelParams, TrainingParams

from .config import HeartbeatParams, PrunerParams, TuningParams
from .storage import database_url, repair_journal, schema_lock

logger = logging.getLogger(__name__)

FINGERPRINT = "fingerprint"
DATA_FINGERPRINT = "data_fingerprint"
DEFAULT_TRIAL = "default_configuration"
# The trial's driver: {"host", "pids", "pid", "started"} (see this_driver).
DRIVER = "driver"
# The objective's name, for optuna-dashboard and Optuna's plots ("Objective 0" otherwise).
METRIC = "cv_accuracy"


def open_storage(storage: Mapping[str, Any], heartbeat: HeartbeatParams | None = None) -> Any:
    """A journal file (``{"path": ...}``), repaired if a crash cut its last line, or a
    database (``{"url": ...}``) whose trials carry Optuna's heartbeats."""
    if storage.get("url"):
        heartbeat = heartbeat or HeartbeatParams()
        url = database_url(storage["url"])
        with warnings.catch_warnings(), schema_lock(url):
            # heartbeat_interval is "experimental" in Optuna 5; it has been since 2.9.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                url,
                heartbeat_interval=heartbeat.interval,
                grace_period=heartbeat.grace_period,
            )
    path = Path(storage["path"])
    path.parent.mkdir(parents=True, exist_ok=True)
    repair_journal(path)
    backend = optuna.storages.journal.JournalFileBackend(str(path))
    return optuna.storages.JournalStorage(backend)


def fingerprint(
    data: Mapping[str, Any], tuning: TuningParams, model: ModelParams, training: TrainingParams
) -> str:
    """What a study's trial values depend on: rows, folds, search space and the fixed blocks."""
    digest = _rows_digest(data)
    fixed = {
        "folds": tuning.folds,
        "fold_seed": tuning.fold_seed,
        "space": {k: v.model_dump() for k, v in tuning.search_space.items()},
        "model": model.model_dump(),
        # Progress bars and thread counts do not change a trial's numbers.
        "training": training.model_dump(exclude={"progress", "threads"}),
    }
    digest.update(json.dumps(fixed, sort_keys=True, default=str).encode())
    return digest.hexdigest()[:16]


def data_fingerprint(data: Mapping[str, Any], tuning: TuningParams) -> str:
    """What a study's rows are: the encoded rows, their class codes and how they are cut into
    folds. Recorded beside ``fingerprint`` so that a study can tell other data (its sibling
    takes the trials, ``study_name``) from other settings on the same data (refused)."""
    digest = _rows_digest(data)
    digest.update(json.dumps({"folds": tuning.folds, "fold_seed": tuning.fold_seed}).encode())
    return digest.hexdigest()[:16]


def _rows_digest(data: Mapping[str, Any]) -> Any:
    # Class codes, not the user's labels: the bytes of an array of strings are pointers.
    # The phone table's labels are their own codes, so its studies keep their fingerprint.
    labels = np.asarray(data["labels"])
    if labels.dtype.kind not in "iu":
        raise TypeError(f"a study's labels are class codes 0…K−1, got dtype {labels.dtype}")
    digest = hashlib.sha256()
    digest.update(np.ascontiguousarray(data["features"]).tobytes())
    digest.update(np.ascontiguousarray(labels, dtype=np.int64).tobytes())
    return digest


def study_name(storage: Any, name: str, print_: str, data_print: str) -> str:
    """The study a run adds its trials to: ``name``, unless the study of that name was made
    on other rows, labels or folds; then its sibling ``<name>-<data fingerprint>``.

    So a new table needs no study name of its own, and going back to the old table resumes
    the old study. Another search space or other fixed parameters on the same rows keep the
    name, and ``load_study`` refuses them. A study made before data fingerprints were
    recorded cannot tell other rows from other settings: its sibling is used then too.
    """
    try:
        named = optuna.load_study(study_name=name, storage=storage)
    except KeyError:
        return name
    attrs = named.user_attrs
    if attrs.get(FINGERPRINT) in (None, print_) or attrs.get(DATA_FINGERPRINT) == data_print:
        return name
    sibling = f"{name}-{data_print[:8]}"
    logger.info(
        "Study %r was made on other rows, labels or folds than this run's%s: this run's "
        "trials go to study %r (tuning.study_name names another study for a fresh start)",
        name,
        "" if DATA_FINGERPRINT in attrs else " (or other settings; it records no data fingerprint)",
        sibling,
    )
    return sibling


def load_study(
    storage: Any,
    tuning: TuningParams,
    print_: str,
    *,
    create: bool,
    sampler: Any = None,
    pruner: Any = None,
    data_print: str | None = None,
) -> Any:
    """Opens (or creates) the run's study: the named one, or with ``data_print`` its sibling
    for other data (``study_name``); refuses one made with another search space or other
    fixed parameters.

    Trials that their driver left running are failed here (``fail_stale_trials``).
    """
    name = tuning.study_name
    if data_print is not None:
        name = study_name(storage, name, print_, data_print)
    if create:
        study = optuna.create_study(
            study_name=name,
            storage=storage,
            direction="maximize",
            load_if_exists=True,
            sampler=sampler,
            pruner=pruner,
        )
    else:
        try:
            study = optuna.load_study(study_name=name, storage=storage)
        except KeyError as error:
            raise ValueError(
                f"tuning.n_trials is 0 but the study {name!r} does not exist: nothing to refit"
            ) from error
    # Trials before the fingerprint: a driver sets the fingerprint before it adds the first
    # trial, so another driver starting at the same moment that sees a trial sees it too.
    trials = study.get_trials(deepcopy=False)
    known = study.user_attrs.get(FINGERPRINT)
    if known is None and not trials:
        study.set_user_attr(FINGERPRINT, print_)
    elif known != print_:
        same_rows = data_print is not None and study.user_attrs.get(DATA_FINGERPRINT) == data_print
        made_on = (
            "on the same rows and folds with another search space or other fixed parameters"
            if same_rows
            else "on other data, folds, search space or fixed parameters"
        )
        raise ValueError(
            f"the study {name!r} was made {made_on} than this run's; its trials would not "
            "compare. Set a new tuning.study_name to start afresh (e.g. --params "
            "tuning.study_name=...)."
        )
    if data_print is not None and DATA_FINGERPRINT not in study.user_attrs:
        # New, or made before data fingerprints (its fingerprint matched, so the rows are
        # these): recorded, so that a later run can tell other rows from other settings.
        study.set_user_attr(DATA_FINGERPRINT, data_print)
    if study.metric_names != [METRIC]:
        with warnings.catch_warnings():
            # set_metric_names is "experimental" in Optuna 5; it has been since 3.2.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            study.set_metric_names([METRIC])
    fail_stale_trials(study, storage, tuning.stale_after)
    return study


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


def build_sampler(tuning: TuningParams, parallel: bool) -> Any:
    # constant_liar: trials still running count as poor, so parallel workers spread out.
    return optuna.samplers.TPESampler(seed=tuning.seed, constant_liar=parallel)


def build_pruner(pruner: PrunerParams) -> Any:
    if pruner.name is None:
        return optuna.pruners.NopPruner()
    cls = getattr(optuna.pruners, pruner.name, None)
    if not isinstance(cls, type) or not issubclass(cls, optuna.pruners.BasePruner):
        raise ValueError(f"tuning.pruner.name: {pruner.name!r} is not an optuna.pruners class")
    try:
        return cls(**pruner.settings())
    except TypeError as error:
        raise ValueError(
            f"tuning.pruner: {pruner.name} refused {pruner.settings()}: {error}"
        ) from error


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
