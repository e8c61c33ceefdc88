"""The study: where it is stored and what identifies it.

A study is opened on a journal file (repaired first if a crash cut its last line) or a
database; it carries the fingerprint of what its trial values depend on, so that a run with
another search space refuses it, and the fingerprint of its rows, so that a run on other data
goes to a sibling study of its own; it names its objective (``cv_accuracy``). Opening it
fails the trials that dead drivers left running; who runs a trial, and how a driver's trials
outlive it, is ``drivers``' business. How trials are run is ``executor``'s.

Only the tuning nodes import this module, inside the node functions: other pipelines must not
pay for optuna at start-up.
"""

from __future__ import annotations

import hashlib
import json
import logging
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import numpy as np
import optuna

from neural_net_lab.engine.config import ModelParams, TrainingParams

from .config import HeartbeatParams, PrunerParams, TuningParams
from .drivers import fail_stale_trials
from .storage import database_url, repair_journal, schema_lock

logger = logging.getLogger(__name__)

FINGERPRINT = "fingerprint"
DATA_FINGERPRINT = "data_fingerprint"
DEFAULT_TRIAL = "default_configuration"
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
