"""The final comparison: the served network and every tuned baseline scored on the same fresh
repeated folds and on the same test rows, so that their differences are paired.

One k-fold CV gives k scores per candidate; its standard deviation says how the folds vary,
not whether two candidates differ. Scored on the same folds, the differences are paired,
and r repetitions of k-fold give r·k of them for the corrected resampled t-test
(``neural_net_lab.comparison``). The repetitions are fresh splits, not the study's folds,
but of the same training rows the hyperparameters were chosen on: the report says so.

Each candidate keeps what it was tuned to. The network's side is what is served: with
``final: ensemble`` every fold trains ``ensemble_seeds`` members whose probabilities are
averaged, as the served fold ensemble averages its members; with ``refit``, one network.
All folds of the network train as one stack (``engine.cv``), which keeps the extra folds
cheap; the seconds they cost are reported.
"""

from __future__ import annotations

import time
import warnings
from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from sklearn.exceptions import ConvergenceWarning
from sklearn.model_selection import RepeatedStratifiedKFold, cross_val_score

from neural_net_lab.comparison import accuracy_interval, corrected_t_test, mcnemar_exact
from neural_net_lab.datasets.tuned_parameters import TunedParams
from neural_net_lab.engine.cv import cross_validate
from neural_net_lab.engine.ensemble import build_ensemble

from .baselines import BaselineParams, tuned_pipeline
from .config import TuningParams

Folds = list[tuple[np.ndarray, np.ndarray]]


def repeated_folds(features: np.ndarray, labels: np.ndarray, tuning: TuningParams) -> Folds:
    """``comparison.repeats`` repetitions of stratified ``folds``-fold CV, shuffled by
    ``comparison.seed`` (``TuningParams`` refuses the study's fold seed)."""
    splitter = RepeatedStratifiedKFold(
        n_splits=tuning.folds,
        n_repeats=tuning.comparison.repeats,
        random_state=tuning.comparison.seed,
    )
    return [(np.asarray(a), np.asarray(b)) for a, b in splitter.split(features, labels)]


def test_train_ratio(folds: Folds) -> float:
    """n_test / n_train of the folds, the overlap term of the Nadeau–Bengio correction."""
    return float(np.mean([len(b) for _, b in folds]) / np.mean([len(a) for a, _ in folds]))


def network_fold_accuracy(
    features: np.ndarray,
    labels: np.ndarray,
    folds: Folds,
    tuned: TunedParams,
    tuning: TuningParams,
) -> list[float]:
    """The served kind of the chosen configuration, trained on each fold's training rows and
    scored on its held-out rows."""
    members = tuned.ensemble_seeds if tuned.final == "ensemble" else 1
    cv = cross_validate(
        features,
        labels,
        folds,
        tuned.model,
        tuned.training,
        stacked=tuning.stacked,
        seeds_per_fold=members,
        keep_networks=members > 1,
    )
    if members == 1:
        return [float(a) for a in cv.val_accuracy]
    accuracy = []
    for fold, (_, held_out) in enumerate(folds):
        ensemble = build_ensemble(
            [(m.mean, m.scale, m.state_dict) for m in cv.members if m.fold == fold],
            tuned.model,
        )
        predicted = ensemble.probabilities(features[held_out]).argmax(axis=1)
        accuracy.append(float(np.mean(predicted == labels[held_out])))
    return accuracy


def baseline_fold_accuracy(
    name: str,
    entry: BaselineParams,
    params: Mapping[str, Any],
    features: np.ndarray,
    labels: np.ndarray,
    folds: Folds,
    n_jobs: int = 1,
) -> list[float]:
    """A tuned baseline, with the arguments it was tuned to, scored on every fold."""
    pipeline = tuned_pipeline(name, entry, params)
    # tune_baselines has already said once when these settings stop at the iteration cap.
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ConvergenceWarning)
        # Each fold fits its own clone; n_jobs processes share them (the Dask cluster is
        # closed by now, and the slowest baselines take seconds a fit).
        scores = cross_val_score(
            pipeline,
            features,
            labels,
            cv=folds,
            scoring="accuracy",
            n_jobs=n_jobs,
            error_score="raise",
        )
    return [float(a) for a in scores]


def score_repeated(
    features: np.ndarray,
    labels: np.ndarray,
    tuned: TunedParams,
    baselines: Mapping[str, Mapping[str, Any]],
    tuning: TuningParams,
) -> dict[str, Any]:
    """Every candidate of the final comparison on the same repeated folds: per-fold
    accuracies, the folds' description and what each side cost in seconds."""
    folds = repeated_folds(features, labels, tuning)
    started = time.perf_counter()
    network = network_fold_accuracy(features, labels, folds, tuned, tuning)
    network_seconds = time.perf_counter() - started
    scored = {
        name: baseline_fold_accuracy(
            name,
            tuning.baselines[name],
            result["params"],
            features,
            labels,
            folds,
            n_jobs=tuning.comparison.n_jobs,
        )
        for name, result in baselines.items()
    }
    return {
        "repeats": tuning.comparison.repeats,
        "folds": tuning.folds,
        "seed": tuning.comparison.seed,
        "test_train_ratio": test_train_ratio(folds),
        "network": {
            "kind": tuned.final,
            "members_per_fold": tuned.ensemble_seeds if tuned.final == "ensemble" else 1,
            "fold_accuracy": network,
            "seconds": network_seconds,
        },
        "baselines": scored,
        "seconds": time.perf_counter() - started,
    }


def compare(
    repeated: Mapping[str, Any],
    served_correct: np.ndarray,
    baseline_test_rows: Mapping[str, Sequence[bool]],
) -> dict[str, Any]:
    """The served network against each tuned baseline: on the repeated folds, each side's
    mean with its corrected 95% interval and the corrected resampled t-test of the paired
    differences (network − baseline); on the test rows (which each gets right), the exact
    McNemar test. The best baseline is the one with the highest repeated-CV mean (the test
    split chooses nothing)."""
    ratio = repeated["test_train_ratio"]
    network = repeated["network"]["fold_accuracy"]
    repeated_cv = {}
    for name, accuracy in {"network": network, **repeated["baselines"]}.items():
        interval = accuracy_interval(accuracy, ratio)
        repeated_cv[name] = {
            "accuracy": interval["mean"],
            "ci": [interval["ci_low"], interval["ci_high"]],
            "fold_accuracy": accuracy,
        }
    pairs = {
        name: {
            "cv": corrected_t_test(np.subtract(network, accuracy), ratio),
            "test": mcnemar_exact(served_correct, baseline_test_rows[name]),
        }
        for name, accuracy in repeated["baselines"].items()
    }
    best = max(pairs, key=lambda n: repeated_cv[n]["accuracy"]) if pairs else None
    return {
        "repeats": repeated["repeats"],
        "folds": repeated["folds"],
        "seed": repeated["seed"],
        "test_train_ratio": ratio,
        "network_kind": repeated["network"]["kind"],
        "members_per_fold": repeated["network"]["members_per_fold"],
        "seconds": {"network": repeated["network"]["seconds"], "total": repeated["seconds"]},
        "repeated_cv": repeated_cv,
        "best_baseline": best,
        "pairs": pairs,
    }
