"""The study: where it is stored, what identifies it, and its trials that outlive their run.

A study is opened on a journal file (repaired first if a crash cut its last line) or a
database; it carries the fingerprint of what its trial values depend on, so that a run with
another search space refuses it, and the fingerprint of its rows, so that a run on other data
goes to a sibling study of its own. Trials left running by a dead driver are
failed by heartbeat (a database) or by age (a journal); a driver beats for its own trials
(``Heartbeats``). How trials are run is ``executor``'s business.

Only the tuning nodes import this module, inside the node functions: other pipelines must not
pay for optuna at start-up.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import logging
import time
import warnings
from collections.abc import Iterable, Mapping
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import optuna
from optuna.trial import TrialState

from neural_net_lab.engine.config import ModelParams, TrainingParams

from .config import HeartbeatParams, PrunerParams, TuningParams
from .storage import database_url, repair_journal

logger = logging.getLogger(__name__)

FINGERPRINT = "fingerprint"
DATA_FINGERPRINT = "data_fingerprint"
DEFAULT_TRIAL = "default_configuration"


def open_storage(storage: Mapping[str, Any], heartbeat: HeartbeatParams | None = None) -> Any:
    """A journal file (``{"path": ...}``), repaired if a crash cut its last line, or a
    database (``{"url": ...}``) whose trials carry Optuna's heartbeats."""
    if storage.get("url"):
        heartbeat = heartbeat or HeartbeatParams()
        with warnings.catch_warnings():
            # heartbeat_interval is "experimental" in Optuna 5; it has been since 2.9.
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            return optuna.storages.RDBStorage(
                database_url(storage["url"]),
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
    fixed parameters."""
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
    return study


def fail_stale_trials(study: Any, stale_after: float, storage: Any = None) -> list[int]:
    """Fails the trials of dead drivers; returns their numbers.

    A database storage has heartbeats: Optuna fails the trials whose driver stopped beating
    for the grace period. A journal has none, so there a trial left RUNNING for longer than
    ``stale_after`` seconds is failed. By heartbeat or age, never by restarting: another
    machine sharing the study may be running its own trials.
    """
    storage = storage if storage is not None else study._storage
    if heartbeat_interval(storage):
        running = _running(study)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", optuna.exceptions.ExperimentalWarning)
            optuna.storages.fail_stale_trials(study)
        failed = {t.number for t in study.get_trials(deepcopy=False, states=(TrialState.FAIL,))}
        return sorted(running & failed)
    now = datetime.now()
    stale = [
        t
        for t in study.get_trials(deepcopy=False, states=(TrialState.RUNNING,))
        if t.datetime_start and now - t.datetime_start > timedelta(seconds=stale_after)
    ]
    study_id = storage.get_study_id_from_name(study.study_name)
    failed = []
    for trial in stale:
        trial_id = storage.get_trial_id_from_study_id_trial_number(study_id, trial.number)
        # Its driver may have been alive after all, and have just told it.
        with contextlib.suppress(optuna.exceptions.UpdateFinishedTrialError):
            storage.set_trial_user_attr(trial_id, "error", "stale: its run ended before it did")
            study.tell(trial.number, state=TrialState.FAIL)
            failed.append(trial.number)
    return failed


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


class Heartbeats:
    """The driver's heartbeats for its running trials, with a database storage; nothing
    with a journal (no heartbeats there).

    A trial gets its first beat when it is asked: Optuna never counts as stale a trial that
    has none. Every ``interval`` the driver beats for the trials it waits on, and fails the
    trials of other drivers that stopped beating, as ``study.optimize`` does.
    """

    def __init__(self, study: Any, storage: Any, stale_after: float) -> None:
        self._study = study
        self._storage = storage
        self._stale_after = stale_after
        self.interval = heartbeat_interval(storage) if storage is not None else None
        self._study_id = storage.get_study_id_from_name(study.study_name) if self.interval else 0
        self._ids: dict[int, int] = {}
        self._last = time.monotonic()

    def ask(self) -> Any:
        if not self.interval:
            return self._study.ask()
        with warnings.catch_warnings():
            # "Heartbeat of storage is supposed to be used with Study.optimize": this
            # driver beats itself.
            warnings.filterwarnings("ignore", message="Heartbeat of storage")
            trial = self._study.ask()
        self._ids[trial.number] = self._storage.get_trial_id_from_study_id_trial_number(
            self._study_id, trial.number
        )
        self._storage.record_heartbeat(self._ids[trial.number])
        return trial

    def wait(self) -> float | None:
        """Seconds until the next beat is due (None: no heartbeats, wait for a result)."""
        if not self.interval:
            return None
        return max(0.0, self._last + self.interval - time.monotonic())

    def beat(self, trials: Iterable[Any]) -> None:
        if not self.interval or time.monotonic() < self._last + self.interval:
            return
        self._last = time.monotonic()
        for trial in trials:
            self._storage.record_heartbeat(self._ids[trial.number])
        stale = fail_stale_trials(self._study, self._stale_after, self._storage)
        if stale:
            logger.warning("Trials %s stopped beating (their run died): failed", stale)
