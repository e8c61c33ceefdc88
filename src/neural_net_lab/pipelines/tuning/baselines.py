"""Classical baselines tuned on the network's own folds, so that the comparison is fair.

A tuned network compared with an untuned baseline flatters the network. Each baseline here
gets its own search, on the same stratified folds as the study, and is scored once on the
same test split, so the report compares like with like.

The shape follows from that:

- A baseline is a scikit-learn ``Pipeline`` of a ``StandardScaler`` and the estimator. The
  search fits the whole pipeline inside each fold, so no scaler ever sees the rows it is
  scored on (the network's folds fit their own scalers too).
- scikit-learn does the searching: ``GridSearchCV`` over a grid, or a seeded Optuna study of
  ``cross_val_score`` on the same folds (optuna-integration's ``OptunaSearchCV`` is not a
  dependency). Optuna spaces reuse the study's ``Dimension``.
- ``check_baselines`` imports each estimator and checks every argument name against its
  ``get_params()`` before any trial, so that a typo stops the run at once, named by its path.
- Estimators that take a ``random_state`` get the entry's ``seed`` unless it is set or
  searched: the same inputs give the same numbers.
"""

from __future__ import annotations

import importlib
import logging
import time
import warnings
from collections.abc import Mapping
from typing import Annotated, Any, Literal

import mlflow
import numpy as np
from pydantic import Field, model_validator
from sklearn.base import BaseEstimator, clone, is_classifier
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import GridSearchCV, cross_val_score
from sklearn.pipeline import Pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.utils._param_validation import InvalidParameterError

from neural_net_lab.engine.config import Block, NonNegativeInt, PositiveInt
from neural_net_lab.engine.errors import ParameterError, setting_error
from neural_net_lab.engine.tracking import child_run, log_history_and_metrics

from .search_space import Dimension, suggest

logger = logging.getLogger(__name__)

BLOCK = "tuning.baselines"
_STEP = "classifier"  # the estimator's step in the pipeline: its arguments are classifier__C


class BaselineParams(Block):
    """One entry of ``tuning.baselines``: a scikit-learn classifier by import path, its fixed
    ``settings`` and a search over other constructor arguments, a ``grid`` (every
    combination; an empty grid scores the settings alone) or an Optuna ``space`` of
    ``n_trials`` trials."""

    estimator: str = Field(min_length=1)  # e.g. sklearn.linear_model.LogisticRegression
    settings: dict[str, Any] = Field(default_factory=dict)
    search: Literal["grid", "optuna"] = "grid"
    grid: dict[str, Annotated[list[Any], Field(min_length=1)]] = Field(default_factory=dict)
    space: dict[str, Dimension] = Field(default_factory=dict)
    n_trials: PositiveInt | None = None
    # The estimator's random_state (unless set or searched) and the Optuna sampler's seed.
    seed: NonNegativeInt = 42

    @model_validator(mode="after")
    def _one_search(self) -> BaselineParams:
        if self.search == "grid" and (self.space or self.n_trials is not None):
            raise ValueError("a grid search takes a grid, not space or n_trials")
        if self.search == "optuna":
            if self.grid:
                raise ValueError("an optuna search takes space and n_trials, not a grid")
            if not self.space or self.n_trials is None:
                raise ValueError("an optuna search needs a space and n_trials")
        for key in self.settings:
            if key in self.searched():
                rule = f"{key!r} is searched, so it cannot also be a fixed setting"
                raise setting_error("BaselineParams", ("settings", key), rule, self.settings[key])
        return self

    def searched(self) -> dict[str, Any]:
        """The searched arguments: the grid's lists or the space's dimensions."""
        return dict(self.grid if self.search == "grid" else self.space)


def check_baselines(baselines: Mapping[str, BaselineParams]) -> None:
    """Imports every baseline's estimator and checks each argument's name and given values
    against it, without fitting anything; raises a ``ParameterError`` naming the bad key
    (``tuning.baselines.<name>.grid.C``). Call it before the first trial."""
    for name, entry in baselines.items():
        _estimator(name, entry)


def tune_baselines(
    features: Any,
    labels: Any,
    folds: list[tuple[np.ndarray, np.ndarray]],
    test_features: Any,
    test_labels: Any,
    baselines: Mapping[str, BaselineParams],
) -> dict[str, dict[str, Any]]:
    """Tunes each baseline on ``folds`` over the unscaled training ``features``, refits the
    chosen arguments on all of them and scores the test split once (``test_correct``: which
    rows it gets right, for paired tests; ``test_accuracy``).

    Each baseline is one MLflow child run of the active run (named by its key) with its
    arguments, fold accuracies, CV mean and std and test accuracy; nothing without a run.
    """
    results = {}
    for name, entry in baselines.items():
        pipeline = _pipeline(name, entry)
        with child_run(name, entry.dump()) as run_id:
            started = time.perf_counter()
            search = _grid_search if entry.search == "grid" else _optuna_search
            # A solver stopped by its iteration cap still gives a model and a score; one line
            # per baseline says so instead of one warning per fit.
            with warnings.catch_warnings(record=True) as seen:
                warnings.simplefilter("always", ConvergenceWarning)
                params, fold_accuracy = search(pipeline, entry, features, labels, folds)
                pipeline.set_params(**_prefixed(params)).fit(features, labels)
            _report_convergence(name, seen)
            result = {
                "estimator": entry.estimator,
                "params": params,
                "cv_accuracy": float(np.mean(fold_accuracy)),
                "cv_std": float(np.std(fold_accuracy)),
                "fold_accuracy": fold_accuracy,
                "test_correct": (
                    pipeline.predict(test_features) == np.asarray(test_labels)
                ).tolist(),
                "seconds": time.perf_counter() - started,
            }
            result["test_accuracy"] = float(np.mean(result["test_correct"]))
            if run_id is not None:
                _log(run_id, params, result)
        logger.info(
            "Baseline %s: CV accuracy %.4f ± %.4f, test %.4f (%s; %.1f s)",
            name,
            result["cv_accuracy"],
            result["cv_std"],
            result["test_accuracy"],
            ", ".join(f"{k}={v}" for k, v in params.items()) or "no search",
            result["seconds"],
        )
        results[name] = result
    return results


def tuned_pipeline(name: str, entry: BaselineParams, params: Mapping[str, Any]) -> Pipeline:
    """The baseline's scaler and estimator with the arguments its search chose (``params``,
    as ``tune_baselines`` reports them), unfitted: what the final comparison scores on its
    repeated folds and refits on the whole training split."""
    return _pipeline(name, entry).set_params(**_prefixed(params))


def _report_convergence(name: str, seen: list[warnings.WarningMessage]) -> None:
    unconverged = [w for w in seen if issubclass(w.category, ConvergenceWarning)]
    for other in seen:
        if other not in unconverged:
            warnings.warn_explicit(other.message, other.category, other.filename, other.lineno)
    if unconverged:
        logger.warning(
            "Baseline %s: %d fit(s) stopped at the solver's iteration cap (%s); their scores "
            "are those of the unconverged models",
            name,
            len(unconverged),
            str(unconverged[0].message).strip(),
        )


def _estimator(name: str, entry: BaselineParams) -> BaseEstimator:
    """The estimator with its fixed settings, after checking its path, each argument's name
    and each given value (the bounds of an Optuna range) against the estimator's own rules."""
    where = f"{BLOCK}.{name}"
    module, _, attribute = entry.estimator.rpartition(".")
    try:
        cls = getattr(importlib.import_module(module), attribute)
    except (ImportError, AttributeError, ValueError) as error:
        raise ParameterError(
            f"{where}.estimator: cannot import {entry.estimator!r} ({error}); give the "
            "import path of a scikit-learn classifier, e.g. sklearn.svm.SVC"
        ) from None
    if not (isinstance(cls, type) and issubclass(cls, BaseEstimator)):
        raise ParameterError(f"{where}.estimator: {entry.estimator!r} is not an estimator class")
    try:
        estimator = cls()
    except TypeError as error:
        raise ParameterError(
            f"{where}.estimator: {entry.estimator} cannot be built without arguments ({error})"
        ) from None
    if not is_classifier(estimator):
        raise ParameterError(f"{where}.estimator: {entry.estimator} is not a classifier")
    takes = estimator.get_params(deep=False)
    searched = "grid" if entry.search == "grid" else "space"
    candidates = {("settings", k): [v] for k, v in entry.settings.items()}
    candidates |= {(searched, k): _candidates(v) for k, v in entry.searched().items()}
    for (group, key), values in candidates.items():
        if key not in takes:
            raise ParameterError(
                f"{where}.{group}.{key}: {cls.__name__} takes no argument {key!r}; "
                f"it takes {sorted(takes)}"
            )
        for value in values:
            try:  # scikit-learn's own rules for the argument, checked before any fit
                clone(estimator).set_params(**{key: value})._validate_params()
            except InvalidParameterError as error:
                raise ParameterError(f"{where}.{group}.{key}: {error}") from None
    settings = dict(entry.settings)
    if "random_state" in takes and "random_state" not in {**settings, **entry.searched()}:
        settings["random_state"] = entry.seed
    return estimator.set_params(**settings)


def _candidates(searched: list[Any] | Dimension) -> list[Any]:
    """A grid's values, or the values that bound an Optuna dimension."""
    if isinstance(searched, list):
        return searched
    if searched.type == "categorical":
        return list(searched.choices or [])
    bounds = [searched.low, searched.high]
    return [int(b) for b in bounds] if searched.type == "int" else bounds


def _pipeline(name: str, entry: BaselineParams) -> Pipeline:
    # The scaler is a step of the pipeline, so every fit (each fold, the refit) fits its own.
    return Pipeline([("scaler", StandardScaler()), (_STEP, _estimator(name, entry))])


def _grid_search(pipeline, entry, features, labels, folds) -> tuple[dict[str, Any], list[float]]:
    # error_score="raise": a value the estimator refuses fails the run instead of scoring NaN.
    search = GridSearchCV(
        pipeline,
        _prefixed(entry.grid),
        cv=folds,
        scoring="accuracy",
        refit=False,  # tune_baselines refits the chosen arguments, as for an Optuna search
        error_score="raise",
    ).fit(features, labels)
    best = search.best_index_
    fold_accuracy = [
        float(search.cv_results_[f"split{i}_test_score"][best]) for i in range(len(folds))
    ]
    return _unprefixed(search.best_params_), fold_accuracy


def _optuna_search(pipeline, entry, features, labels, folds) -> tuple[dict[str, Any], list[float]]:
    import optuna  # noqa: PLC0415 - only Optuna searches pay for optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    tried: dict[int, tuple[dict[str, Any], list[float]]] = {}

    def objective(trial: Any) -> float:
        values = suggest(trial, entry.space)
        scores = cross_val_score(
            pipeline.set_params(**_prefixed(values)),
            features,
            labels,
            cv=folds,
            scoring="accuracy",
            error_score="raise",
        )
        tried[trial.number] = values, [float(s) for s in scores]
        return float(scores.mean())

    sampler = optuna.samplers.TPESampler(seed=entry.seed)
    study = optuna.create_study(direction="maximize", sampler=sampler)
    study.optimize(objective, n_trials=entry.n_trials)
    return tried[study.best_trial.number]


def _prefixed(params: Mapping[str, Any]) -> dict[str, Any]:
    return {f"{_STEP}__{k}": v for k, v in params.items()}


def _unprefixed(params: Mapping[str, Any]) -> dict[str, Any]:
    return {k.removeprefix(f"{_STEP}__"): v for k, v in params.items()}


def _log(run_id: str, params: Mapping[str, Any], result: Mapping[str, Any]) -> None:
    """The chosen arguments and the scores, named as the study's trial runs name theirs, so
    that the MLflow UI shows baselines and trials in the same columns."""
    mlflow.log_params({f"best.{k}": str(v)[:6000] for k, v in params.items()})
    metrics = {f"fold_{i}_val_accuracy": v for i, v in enumerate(result["fold_accuracy"])}
    metrics |= {
        "mean_accuracy": result["cv_accuracy"],
        "std_accuracy": result["cv_std"],
        "test_accuracy": result["test_accuracy"],
        "seconds": result["seconds"],
    }
    log_history_and_metrics(run_id, {}, metrics)
