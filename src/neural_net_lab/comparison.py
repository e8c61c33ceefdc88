"""Which of two models wins, and how sure we can be: the statistics that the tuning and the
evaluation pipelines share.

- ``corrected_t_test``: two models scored on the same folds of an r-times repeated k-fold
  cross-validation. The J = r·k paired differences are not independent (the training sets
  overlap), so the plain paired t-test is far too confident. Nadeau & Bengio (2003,
  "Inference for the Generalization Error", Machine Learning 52) correct the variance of the
  mean difference from s²/J to (1/J + n_test/n_train)·s²; Bouckaert & Frank (2004,
  "Evaluating the Replicability of Significance Tests for Comparing Learning Algorithms",
  PAKDD) apply it to repeated k-fold CV with J − 1 degrees of freedom. For k folds,
  n_test/n_train = 1/(k − 1).
- ``mcnemar_exact``: two models scored on the same test rows. Only the rows where exactly
  one of them is right carry evidence; under "no difference" each such row is a fair coin, so
  the exact test is a two-sided binomial test with p = 0.5 (McNemar 1947; the exact form
  avoids the chi-square approximation, which fails with few discordant rows).
- ``wilson_interval``: the Wilson (1927) score interval of an accuracy, which keeps its
  coverage near 0 and 1 where the normal (Wald) interval does not (Newcombe 1998).

Every result is a dict of plain Python floats, ints and strings: it goes into a JSON file
and into MLflow as is. Verdicts read "a beats b", "a trails b", or no detectable difference.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

CONFIDENCE = 0.95


def _no_difference(confidence: float) -> str:
    return f"no detectable difference at {round(confidence * 100, 6):g}%"


NO_DIFFERENCE = _no_difference(CONFIDENCE)


def verdict(low: float, high: float, confidence: float = CONFIDENCE) -> str:
    """The verdict on a − b from its interval: "beats" when it lies above 0, "trails" when
    below, else no detectable difference (``confidence`` names the level in that string)."""
    if low > 0:
        return "beats"
    if high < 0:
        return "trails"
    return _no_difference(confidence)


def said(word: str, other: str) -> str:
    """A verdict against ``other`` as a reader reads it: "beats other", "trails other",
    "shows no detectable difference at 95% from other"."""
    return f"{word} {other}" if word in ("beats", "trails") else f"shows {word} from {other}"


def _check_confidence(confidence: float) -> None:
    if not 0 < confidence < 1:
        raise ValueError(f"confidence must lie strictly between 0 and 1, got {confidence}")


def corrected_interval(
    values: Sequence[float], test_train_ratio: float, confidence: float = CONFIDENCE
) -> dict[str, Any]:
    """The mean of J = r·k per-fold values of a repeated k-fold CV (a model's accuracies, or
    two models' paired differences) with its corrected interval: variance s² (ddof=1) ×
    (1/J + n_test/n_train), t quantile with J−1 df. Also ``standard_error`` (0 when every
    value is the same), ``df`` and ``folds``."""
    _check_confidence(confidence)
    values = np.asarray(values, dtype=float).ravel()
    folds = len(values)
    if folds < 2:
        raise ValueError(f"the corrected t-test needs at least 2 differences, got {folds}")
    if not np.all(np.isfinite(values)):
        raise ValueError("the differences must all be finite numbers")
    if not test_train_ratio > 0:
        raise ValueError(f"test_train_ratio (n_test/n_train) must be > 0, got {test_train_ratio}")
    # Checked exactly rather than through s² == 0: the mean of equal floats can be off by an
    # ulp, leaving a spurious s² of 1e-35 instead of the certainty the data show.
    if np.all(values == values[0]):
        mean, standard_error, half_width = float(values[0]), 0.0, 0.0
    else:
        mean = float(values.mean())
        standard_error = math.sqrt((1 / folds + test_train_ratio) * float(values.var(ddof=1)))
        half_width = float(stats.t.ppf((1 + confidence) / 2, folds - 1)) * standard_error
    return {
        "mean": mean,
        "ci_low": mean - half_width,
        "ci_high": mean + half_width,
        "standard_error": standard_error,
        "df": folds - 1,
        "folds": folds,
    }


def accuracy_interval(
    accuracies: Sequence[float], test_train_ratio: float, confidence: float = CONFIDENCE
) -> dict[str, Any]:
    """A model's mean accuracy over J = r·k folds with its ``corrected_interval``, cut to
    [0, 1]: with few folds (t with 1 df for 2 folds) the interval reaches past what an
    accuracy can be."""
    interval = corrected_interval(accuracies, test_train_ratio, confidence)
    return interval | {
        "ci_low": max(0.0, interval["ci_low"]),
        "ci_high": min(1.0, interval["ci_high"]),
    }


def corrected_t_test(
    differences: Sequence[float], test_train_ratio: float, confidence: float = CONFIDENCE
) -> dict[str, Any]:
    """Corrected resampled t-test over the J = r·k paired per-fold differences (a − b) of a
    repeated k-fold CV: the mean difference, its ``corrected_interval`` and the two-sided
    p-value of t = mean / corrected standard error with J−1 df."""
    interval = corrected_interval(differences, test_train_ratio, confidence)
    mean, standard_error, df = interval["mean"], interval["standard_error"], interval["df"]
    if standard_error == 0:
        # Two identical models give 0/0: nothing tells them apart. Any other constant
        # difference has no spread at all, so its sign is certain; t is then infinite, which
        # JSON cannot hold, so it is left out (None).
        t = 0.0 if mean == 0 else None
        p_value = 1.0 if mean == 0 else 0.0
    else:
        t = mean / standard_error
        p_value = float(2 * stats.t.sf(abs(t), df))
    low, high = interval["ci_low"], interval["ci_high"]
    return {
        "mean_difference": mean,
        "ci_low": low,
        "ci_high": high,
        "p_value": p_value,
        "t": t,
        "df": df,
        "folds": interval["folds"],
        "test_train_ratio": float(test_train_ratio),
        "verdict": verdict(low, high, confidence),
    }


def wilson_interval(correct: int, total: int, confidence: float = CONFIDENCE) -> dict[str, Any]:
    """The Wilson score interval of the accuracy ``correct``/``total``."""
    _check_confidence(confidence)
    if total <= 0:
        raise ValueError(f"the Wilson interval needs total > 0 rows, got {total}")
    if not 0 <= correct <= total:
        raise ValueError(f"correct must lie between 0 and total ({total}), got {correct}")
    interval = stats.binomtest(int(correct), int(total)).proportion_ci(
        confidence_level=confidence, method="wilson"
    )
    return {
        "accuracy": int(correct) / int(total),
        "ci_low": float(interval.low),
        "ci_high": float(interval.high),
        "correct": int(correct),
        "rows": int(total),
    }


def _correctness(name: str, values: ArrayLike) -> np.ndarray:
    array = np.asarray(values)
    # Integers are refused rather than cast: a column of predicted labels passed by mistake
    # would otherwise read as "right" wherever the label is non-zero.
    if array.dtype != bool or array.ndim != 1:
        raise ValueError(
            f"{name} must be a 1-D array of bools (row right or wrong), "
            f"got dtype {array.dtype} with shape {array.shape}"
        )
    return array


def mcnemar_exact(
    a_correct: ArrayLike, b_correct: ArrayLike, confidence: float = CONFIDENCE
) -> dict[str, Any]:
    """Exact McNemar on the rows where exactly one of the two is right: binomtest(a_only,
    a_only+b_only, 0.5), two-sided."""
    _check_confidence(confidence)
    a, b = _correctness("a_correct", a_correct), _correctness("b_correct", b_correct)
    if len(a) != len(b):
        raise ValueError(f"a_correct and b_correct differ in length: {len(a)} and {len(b)} rows")
    if len(a) == 0:
        raise ValueError("McNemar's test needs at least one row, got none")
    a_only, b_only = int(np.sum(a & ~b)), int(np.sum(~a & b))
    discordant = a_only + b_only
    p_value = 1.0 if discordant == 0 else float(stats.binomtest(a_only, discordant, 0.5).pvalue)
    if p_value < 1 - confidence and a_only != b_only:
        outcome = "beats" if a_only > b_only else "trails"
    else:
        outcome = _no_difference(confidence)
    return {
        "a_only": a_only,
        "b_only": b_only,
        "rows": len(a),
        # Concordant rows cancel: accuracy(a) − accuracy(b) = (a_only − b_only) / rows.
        "difference": (a_only - b_only) / len(a),
        "p_value": p_value,
        "verdict": outcome,
    }
