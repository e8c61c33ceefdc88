"""What a candidate's scores are: its CV accuracy (mean ± std) on the study's folds and its
accuracy on the test split, scored once; and the scores as MLflow metrics.

Which candidates there are is the ``score_tuning`` node's business; how each is scored, and
how the untuned reference is fit, belongs here.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pandas as pd
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from neural_net_lab.datasets.tuned_parameters import TunedParams
from neural_net_lab.engine.ensemble import Ensemble
from neural_net_lab.linear_baseline import EvaluationParams
from neural_net_lab.table import TableSchema, encode_features, encode_labels

SCORES = ("cv_accuracy", "cv_std", "test_accuracy")
_NO_SCORE = float("nan")


def test_accuracy(classifier: Ensemble, test_split: pd.DataFrame, schema: TableSchema) -> float:
    """The share of the test split's rows whose class the classifier predicts."""
    raw = encode_features(test_split, schema, "test split")
    predicted = classifier.probabilities(raw).argmax(axis=1)
    return float(np.mean(predicted == encode_labels(test_split, schema, "test split")))


def chosen_cv(tuned: TunedParams) -> dict[str, float]:
    """The chosen trial's CV scores, as stored with it."""
    std = tuned.cv_std
    return {"cv_accuracy": float(tuned.cv_accuracy), "cv_std": _NO_SCORE if std is None else std}


def default_cv(trials: list[Any]) -> dict[str, float]:
    """The default configuration's CV scores (the study's enqueued first trial); none when it
    did not complete."""
    default = [t for t in trials if t.user_attrs.get("default_configuration")]
    if not default or default[0].state.name != "COMPLETE":
        return {"cv_accuracy": _NO_SCORE, "cv_std": _NO_SCORE}
    return {"cv_accuracy": float(default[0].value), "cv_std": default[0].user_attrs["std_accuracy"]}


def untuned_baseline(
    cv_data: dict[str, Any],
    test_split: pd.DataFrame,
    schema: TableSchema,
    evaluation: EvaluationParams,
) -> dict[str, Any]:
    """The evaluation pipeline's LogisticRegression (C=1), untuned, on the same folds and
    test split, encoded as the network's inputs are."""
    untuned = make_pipeline(
        StandardScaler(), LogisticRegression(**evaluation.baseline.model_dump())
    )
    features, labels = cv_data["features"], cv_data["labels"]
    folds = cross_val_score(untuned, features, labels, cv=cv_data["folds"], scoring="accuracy")
    raw_test = encode_features(test_split, schema, "test split")
    test_labels = encode_labels(test_split, schema, "test split")
    return {
        "estimator": "sklearn.linear_model.LogisticRegression",
        "params": evaluation.baseline.model_dump(),
        "cv_accuracy": float(folds.mean()),
        "cv_std": float(folds.std()),
        "test_accuracy": float(untuned.fit(features, labels).score(raw_test, test_labels)),
    }


def as_mlflow_metrics(metrics: dict[str, Any]) -> dict[str, dict[str, float]]:
    """``tuning.<candidate>_<score>`` for every candidate of the report, in the format of
    kedro-mlflow's ``MlflowMetricsDataset``."""
    candidates = [
        *((name, metrics[name]) for name in ("tuned", "ensemble", "refit", "default")),
        ("untuned_baseline", metrics["untuned_baseline"]),
        *((f"baseline.{name}", scores) for name, scores in metrics["baselines"].items()),
    ]
    return {
        f"tuning.{name}_{key}": {"value": float(scores[key]), "step": 0}
        for name, scores in candidates
        for key in SCORES
    }
