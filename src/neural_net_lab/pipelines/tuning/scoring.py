"""What a candidate's scores are: its CV accuracy on the study's folds (mean ± std and a
95% interval), its accuracy on the test split, scored once, with a Wilson 95% interval; and
the scores as MLflow metrics.

Which candidates there are is the ``score_tuning`` node's business; how each is scored, and
how the untuned reference is fit, belongs here.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neural_net_lab.comparison import accuracy_interval, wilson_interval
from neural_net_lab.datasets.tuned_parameters import TunedParams
from neural_net_lab.engine.ensemble import Ensemble
from neural_net_lab.linear_baseline import EvaluationParams
from neural_net_lab.table import TableSchema, encode_features, encode_labels

SCORES = ("cv_accuracy", "cv_std", "test_accuracy")
INTERVALS = ("cv_ci", "test_ci")
_NO_SCORE = float("nan")


def test_correct(classifier: Ensemble, test_split: pd.DataFrame, schema: TableSchema) -> np.ndarray:
    """Whether the classifier predicts each test row's class (the rows McNemar pairs)."""
    raw = encode_features(test_split, schema, "test split")
    predicted = classifier.probabilities(raw).argmax(axis=1)
    return predicted == encode_labels(test_split, schema, "test split")


def test_scores(correct: int, rows: int) -> dict[str, Any]:
    """Test accuracy with its Wilson 95% interval: one look at ``rows`` rows."""
    wilson = wilson_interval(correct, rows)
    return {"test_accuracy": wilson["accuracy"], "test_ci": [wilson["ci_low"], wilson["ci_high"]]}


def cv_scores(fold_accuracy: list[float] | None, test_train_ratio: float) -> dict[str, Any]:
    """Mean ± std of a candidate's accuracies on the study's folds, and the corrected 95%
    interval of the mean (the folds share training rows: ``comparison``)."""
    if not fold_accuracy:
        return {"cv_accuracy": _NO_SCORE, "cv_std": _NO_SCORE, "cv_ci": [_NO_SCORE, _NO_SCORE]}
    interval = accuracy_interval(fold_accuracy, test_train_ratio)
    return {
        "cv_accuracy": float(np.mean(fold_accuracy)),
        "cv_std": float(np.std(fold_accuracy)),
        "cv_ci": [interval["ci_low"], interval["ci_high"]],
    }


def with_intervals(
    scores: dict[str, Any], test_train_ratio: float, correct: Sequence[bool] | np.ndarray
) -> dict[str, Any]:
    """A baseline's scores (its ``fold_accuracy``) with its intervals, the test ones from
    which test rows it gets right (``correct``)."""
    cv = cv_scores(scores["fold_accuracy"], test_train_ratio)
    return scores | cv | test_scores(int(np.sum(correct)), len(correct))


def chosen_cv(tuned: TunedParams, test_train_ratio: float) -> dict[str, Any]:
    """The chosen trial's CV scores from its stored fold accuracies; a file written before
    they were stored gives its mean and std, without an interval."""
    if tuned.fold_accuracy:
        return cv_scores(tuned.fold_accuracy, test_train_ratio)
    std = _NO_SCORE if tuned.cv_std is None else tuned.cv_std
    return {"cv_accuracy": float(tuned.cv_accuracy), "cv_std": std, "cv_ci": [_NO_SCORE] * 2}


def default_folds(trials: list[Any]) -> list[float] | None:
    """The default configuration's fold accuracies (the study's enqueued first trial); none
    when it did not complete."""
    default = [t for t in trials if t.user_attrs.get("default_configuration")]
    if not default or default[0].state.name != "COMPLETE":
        return None
    return default[0].user_attrs.get("fold_accuracy")


def untuned_baseline(
    cv_data: dict[str, Any],
    test_split: pd.DataFrame,
    schema: TableSchema,
    evaluation: EvaluationParams,
) -> tuple[dict[str, Any], np.ndarray]:
    """The evaluation pipeline's LogisticRegression (C=1), untuned, on the same folds, and
    which rows of the test split it gets right, encoded as the network's inputs are."""
    untuned = make_pipeline(
        StandardScaler(), LogisticRegression(**evaluation.baseline.model_dump())
    )
    features, labels = cv_data["features"], cv_data["labels"]
    folds = cross_val_score(untuned, features, labels, cv=cv_data["folds"], scoring="accuracy")
    raw_test = encode_features(test_split, schema, "test split")
    test_labels = encode_labels(test_split, schema, "test split")
    correct = untuned.fit(features, labels).predict(raw_test) == test_labels
    scores = {
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": evaluation.baseline.model_dump(),
        "fold_accuracy": [float(a) for a in folds],
    }
    return scores, correct


def as_mlflow_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``tuning.<candidate>_<score>`` (with ``_ci_low``/``_ci_high`` of each interval) for
    every candidate of the report, ``tuning.repeated.<candidate>_*`` on the repeated folds and
    ``tuning.vs.<baseline>.*`` for each paired test, in the format of kedro-mlflow's
    ``MlflowMetricsDataset``."""
    candidates = [
        *((name, metrics[name]) for name in ("tuned", "ensemble", "refit", "default")),
        ("untuned_baseline", metrics["untuned_baseline"]),
        *((f"baseline.{name}", scores) for name, scores in metrics["baselines"].items()),
    ]
    values = {}
    for name, scores in candidates:
        values |= {f"tuning.{name}_{key}": scores[key] for key in SCORES}
        for key in INTERVALS:
            low, high = scores[key]
            values |= {f"tuning.{name}_{key}_low": low, f"tuning.{name}_{key}_high": high}
    comparison = metrics["comparison"]
    for name, scores in comparison["repeated_cv"].items():
        low, high = scores["ci"]
        values |= {
            f"tuning.repeated.{name}_accuracy": scores["accuracy"],
            f"tuning.repeated.{name}_ci_low": low,
            f"tuning.repeated.{name}_ci_high": high,
        }
    for name, pair in comparison["pairs"].items():
        cv, test = pair["cv"], pair["test"]
        values |= {
            f"tuning.vs.{name}.cv_difference": cv["mean_difference"],
            f"tuning.vs.{name}.cv_ci_low": cv["ci_low"],
            f"tuning.vs.{name}.cv_ci_high": cv["ci_high"],
            f"tuning.vs.{name}.cv_p_value": cv["p_value"],
            f"tuning.vs.{name}.test_difference": test["difference"],
            f"tuning.vs.{name}.test_p_value": test["p_value"],
        }
    values["tuning.comparison_seconds"] = comparison["seconds"]["total"]
    return {key: {"value": float(value), "step": 0} for key, value in values.items()}
