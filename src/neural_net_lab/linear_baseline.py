"""The linear reference: scikit-learn's LogisticRegression with fixed settings, and the test
scores every model of the lesson is compared by.

The evaluation pipeline scores it next to the network, tuning reports it as the untuned
reference, and transfer trains it on the new market's rows. Tuned baselines live with the
tuning pipeline.
"""

from __future__ import annotations

from typing import Annotated, ClassVar

import numpy as np
import pandas as pd
from pydantic import Field
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import accuracy_score, precision_recall_fscore_support

from neural_net_lab.engine.config import Block, NonNegativeInt, PositiveFloat, PositiveInt
from neural_net_lab.engine.data import ModelInputs


class LogisticBaselineParams(Block):
    """scikit-learn ``LogisticRegression`` settings for the linear reference."""

    C: PositiveFloat = 1.0
    max_iter: PositiveInt = 100


class ImportanceParams(Block):
    """Permutation feature importance on the test split (``evaluation.importance``)."""

    n_repeats: PositiveInt = 10  # shuffles per feature column
    seed: NonNegativeInt = 42  # the same seed gives the same shuffles and numbers


class CalibrationParams(Block):
    """The reliability diagram and its expected calibration error (``evaluation.calibration``)."""

    bins: Annotated[PositiveInt, Field(ge=2)] = 10  # equal-width confidence bins


class EvaluationParams(Block):
    """The evaluation pipeline's settings (``evaluation``)."""

    block_path: ClassVar[str] = "evaluation"

    baseline: LogisticBaselineParams
    importance: ImportanceParams = Field(default_factory=ImportanceParams)
    calibration: CalibrationParams = Field(default_factory=CalibrationParams)


def classification_scores(
    labels: np.ndarray, predicted: np.ndarray, prefix: str
) -> dict[str, float]:
    """Accuracy and macro precision, recall and F1, each key prefixed."""
    precision, recall, f1, _ = precision_recall_fscore_support(
        labels, predicted, average="macro", zero_division=0
    )
    return {
        f"{prefix}test_accuracy": float(accuracy_score(labels, predicted)),
        f"{prefix}test_precision_macro": float(precision),
        f"{prefix}test_recall_macro": float(recall),
        f"{prefix}test_f1_macro": float(f1),
    }


def score_logistic_baseline(
    fit_set: pd.DataFrame, test_set: pd.DataFrame, schema: ModelInputs, params: EvaluationParams
) -> tuple[dict[str, float], np.ndarray]:
    """LogisticRegression trained on the network's training rows (its standardized inputs and
    class codes), scored on the test rows; and its predicted class codes, for paired tests."""
    inputs = list(schema.inputs)
    baseline = LogisticRegression(**params.baseline.model_dump())
    baseline.fit(fit_set[inputs], fit_set[schema.target])
    predicted = baseline.predict(test_set[inputs])
    scores = classification_scores(test_set[schema.target].to_numpy(), predicted, "baseline_")
    return scores, predicted
