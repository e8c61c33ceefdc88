"""Pictures that read a trained classifier on the test split: which of the user's columns it
relies on (permutation feature importance) and whether its probabilities can be taken as
chances (a reliability diagram and the expected calibration error).

A classifier here is anything with ``probabilities(raw) -> (n, K)``, ``raw`` the float64
network inputs before scaling: an ``engine.ensemble.Ensemble`` (the evaluation pipeline's
network with its scaler, or the tuning pipeline's served fold ensemble). Both pictures start
from the raw test split, so they name the user's columns and labels: a text column, one-hot
encoded into several inputs, is shuffled as one column and has one importance.

The evaluation and tuning pipelines import this module; it imports the table package, the
engine's thread cap and scikit-learn, no pipeline.
"""

from __future__ import annotations

from typing import Any, Protocol

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.calibration import calibration_curve
from sklearn.inspection import permutation_importance

from neural_net_lab.engine.threads import cpu_threads
from neural_net_lab.table import TableSchema, encode_features

__all__ = [
    "FittedClassifier",
    "calibration",
    "expected_calibration_error",
    "feature_importance",
    "importance_figure",
    "reliability_figure",
]

SOURCE = "test split"


class Classifier(Protocol):
    def probabilities(self, raw: np.ndarray) -> np.ndarray: ...


class FittedClassifier(ClassifierMixin, BaseEstimator):
    """A trained classifier as a scikit-learn estimator over the table's raw feature columns,
    for scikit-learn's model-inspection tools (``permutation_importance``).

    The network is trained already: ``fit`` only records the class codes 0…K−1 (the columns
    of ``predict_proba``) and returns the estimator. ``predict_proba`` encodes the rows as
    training did (``table.encode_features``) and asks the classifier.
    """

    def __init__(self, classifier: Classifier, schema: TableSchema):
        self.classifier = classifier
        self.schema = schema

    def fit(self, X: pd.DataFrame, y: Any = None) -> FittedClassifier:
        self.classes_ = np.arange(self.schema.n_classes)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        return self.classifier.probabilities(encode_features(X, self.schema, SOURCE))

    def predict(self, X: pd.DataFrame) -> np.ndarray:
        return self.classes_[self.predict_proba(X).argmax(axis=1)]


class _EncodedOnce(FittedClassifier):
    """``FittedClassifier`` on rows encoded once: ``X`` holds, under each feature column's
    name, the position of the encoded row whose inputs for that column are used. Shuffling
    a column of positions is shuffling the raw column, a text column's one-hot inputs
    together, because the encoding reads each cell alone (fill value, category or number)."""

    def __init__(self, classifier: Classifier, schema: TableSchema, encoded: np.ndarray):
        super().__init__(classifier, schema)
        self.encoded = encoded

    def fit(self, X: pd.DataFrame, y: Any = None) -> _EncodedOnce:
        super().fit(X, y)
        # The feature column of each input: one per number, one per category of a text column.
        widths = [len(self.schema.categories.get(c, [None])) for c in self.schema.features]
        if sum(widths) != self.schema.input_dim:
            raise ValueError(f"{widths} inputs per column, but the schema has {self.schema.inputs}")
        self.column_of_input_ = np.repeat(np.arange(len(widths)), widths)
        return self

    def predict_proba(self, X: pd.DataFrame) -> np.ndarray:
        rows = X[list(self.schema.features)].to_numpy()[:, self.column_of_input_]
        raw = self.encoded[rows, np.arange(self.schema.input_dim)]
        # Column-major, as encode_features lays the inputs out.
        return self.classifier.probabilities(np.asfortranarray(raw))


def _rows(test_split: pd.DataFrame, schema: TableSchema) -> tuple[pd.DataFrame, np.ndarray]:
    """The raw feature columns and the class codes of the test rows."""
    return test_split[list(schema.features)], schema.codes(test_split[schema.target], SOURCE)


def feature_importance(
    classifier: Classifier,
    test_split: pd.DataFrame,
    schema: TableSchema,
    *,
    n_repeats: int,
    seed: int,
) -> dict[str, Any]:
    """How much the test accuracy drops when one of the user's feature columns is shuffled
    (scikit-learn's ``permutation_importance``, ``n_repeats`` shuffles per column drawn
    from ``seed``), the columns sorted by mean drop, largest first.

    The numbers are those of ``permutation_importance(FittedClassifier(...), raw columns)``,
    shuffle for shuffle (the tests compare them), but the rows are encoded once rather than
    for each of the columns × ``n_repeats`` predictions (``_EncodedOnce``): 64 columns, 60
    rows and 10 repeats took about 7 s, mostly pandas encoding, and take about 1 s."""
    features, codes = _rows(test_split, schema)
    encoded = encode_features(features, schema, SOURCE)
    positions = pd.DataFrame({column: np.arange(len(features)) for column in schema.features})
    estimator = _EncodedOnce(classifier, schema, encoded).fit(positions, codes)
    # Hundreds of tiny predictions: a second thread mostly waits for a core (64 columns on a
    # busy two-core machine: 6 s with two threads, 1.2 s with one).
    with cpu_threads(1):
        result = permutation_importance(
            estimator, positions, codes, scoring="accuracy", n_repeats=n_repeats, random_state=seed
        )
    order = np.argsort(-result.importances_mean, kind="stable")
    return {
        "scoring": "accuracy",
        "baseline_accuracy": float(estimator.score(positions, codes)),
        "n_rows": len(features),
        "n_repeats": n_repeats,
        "seed": seed,
        "features": [
            {
                "feature": str(features.columns[i]),
                "importance_mean": float(result.importances_mean[i]),
                "importance_std": float(result.importances_std[i]),
            }
            for i in order
        ],
    }


def importance_figure(importance: dict[str, Any], title: str, *, shown: int = 30) -> plt.Figure:
    """The columns' mean accuracy drop as horizontal bars, largest on top, one standard
    deviation over the repeats as error bars; the ``shown`` most important columns."""
    rows = importance["features"][:shown]
    names = [row["feature"] for row in rows][::-1]
    means = [row["importance_mean"] for row in rows][::-1]
    stds = [row["importance_std"] for row in rows][::-1]
    figure, axis = plt.subplots(figsize=(8, 1.2 + 0.28 * len(rows)))
    axis.barh(names, means, xerr=stds, color="tab:blue", ecolor="black", capsize=3)
    axis.axvline(0, color="grey", linewidth=0.8)
    if len(importance["features"]) > len(rows):
        title += f" (top {len(rows)} of {len(importance['features'])})"
    scoring = importance["scoring"]
    axis.set_title(
        f"{title}\ntest {scoring} {importance['baseline_accuracy']:.3f}, "
        f"{importance['n_repeats']} shuffles per column",
    )
    axis.set_xlabel(f"drop in test {scoring} when the column is shuffled (mean ± std)")
    figure.tight_layout()
    return figure


def _top_class_bins(
    probabilities: np.ndarray, labels: np.ndarray, bins: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per equal-width bin of the top-class confidence: edges, row count, summed confidence
    and number of correct rows. A confidence on an edge falls in the lower bin, (lo, hi], as
    scikit-learn's ``calibration_curve`` bins."""
    probabilities = np.asarray(probabilities, dtype="float64")
    confidence = probabilities.max(axis=1)
    correct = probabilities.argmax(axis=1) == np.asarray(labels)
    edges = np.linspace(0.0, 1.0, bins + 1)
    which = np.searchsorted(edges[1:-1], confidence)
    counts = np.bincount(which, minlength=bins)
    confidences = np.bincount(which, weights=confidence, minlength=bins)
    hits = np.bincount(which, weights=correct, minlength=bins)
    return edges, counts, confidences, hits


def expected_calibration_error(probabilities: np.ndarray, labels: np.ndarray, bins: int) -> float:
    """ECE of the top-class confidence in ``bins`` equal-width bins:
    Σ_b (n_b / N) · |accuracy_b − confidence_b| (Guo et al., 2017)."""
    _, counts, confidences, hits = _top_class_bins(probabilities, labels, bins)
    return float(np.abs(hits - confidences).sum() / counts.sum())


def calibration(
    classifier: Classifier, test_split: pd.DataFrame, schema: TableSchema, *, bins: int
) -> dict[str, Any]:
    """The test rows' calibration: the ECE, the top-class reliability per bin (empty bins
    have null confidence and accuracy) and each class's one-vs-rest curve (scikit-learn's
    ``calibration_curve``, empty bins left out), named by the table's labels."""
    features, codes = _rows(test_split, schema)
    probabilities = classifier.probabilities(encode_features(features, schema, SOURCE))
    edges, counts, confidences, hits = _top_class_bins(probabilities, codes, bins)
    reliability = [
        {
            "lower": float(edges[b]),
            "upper": float(edges[b + 1]),
            "count": int(counts[b]),
            "confidence": float(confidences[b] / counts[b]) if counts[b] else None,
            "accuracy": float(hits[b] / counts[b]) if counts[b] else None,
        }
        for b in range(bins)
    ]
    per_class = {}
    for code, label in enumerate(schema.classes):
        prob_true, prob_pred = calibration_curve(
            (codes == code).astype(int), probabilities[:, code], n_bins=bins, pos_label=1
        )
        # The rows behind each point: calibration_curve's bins, its empty ones left out.
        count = np.bincount(np.searchsorted(edges[1:-1], probabilities[:, code]), minlength=bins)
        per_class[str(label)] = {
            "prob_true": prob_true.tolist(),
            "prob_pred": prob_pred.tolist(),
            "count": count[count > 0].tolist(),
        }
    return {
        "expected_calibration_error": expected_calibration_error(probabilities, codes, bins),
        "bins": bins,
        "n_rows": len(codes),
        "accuracy": float(hits.sum() / len(codes)),
        "mean_confidence": float(confidences.sum() / len(codes)),
        "top_class": reliability,
        "one_vs_rest": per_class,
    }


def reliability_figure(calibration: dict[str, Any], title: str) -> plt.Figure:
    """Accuracy against confidence: the diagonal (perfect calibration), the top-class curve
    with the ECE in its legend entry, each class's one-vs-rest curve (a marker's area grows
    with the rows behind it), and below, the number of test rows per confidence bin."""
    figure, (axis, counts_axis) = plt.subplots(
        2, 1, figsize=(8.5, 6.5), height_ratios=[3, 1], sharex=True
    )
    n_rows = calibration["n_rows"]

    def area(counts: list[int]) -> np.ndarray:
        return 8 + 250 * np.sqrt(np.asarray(counts) / n_rows)

    axis.plot([0, 1], [0, 1], linestyle="--", color="grey", label="perfectly calibrated")
    for label, curve in calibration["one_vs_rest"].items():
        (line,) = axis.plot(
            curve["prob_pred"], curve["prob_true"], alpha=0.5, label=f"{label} vs rest"
        )
        axis.scatter(
            curve["prob_pred"], curve["prob_true"], s=area(curve["count"]), color=line.get_color()
        )
    filled = [b for b in calibration["top_class"] if b["count"]]
    confidence = [b["confidence"] for b in filled]
    accuracy = [b["accuracy"] for b in filled]
    ece = calibration["expected_calibration_error"]
    axis.plot(confidence, accuracy, color="black", linewidth=2, label=f"top class (ECE {ece:.3f})")
    axis.scatter(confidence, accuracy, s=area([b["count"] for b in filled]), color="black")
    axis.set(title=title, ylabel="observed frequency (top class: accuracy)", xlim=(0, 1))
    axis.set_ylim(-0.02, 1.02)
    axis.legend(loc="upper left", bbox_to_anchor=(1.02, 1), fontsize="small")
    bins = calibration["top_class"]
    counts_axis.bar(
        [b["lower"] for b in bins],
        [b["count"] for b in bins],
        width=[b["upper"] - b["lower"] for b in bins],
        align="edge",
        color="black",
        alpha=0.6,
        edgecolor="white",
    )
    counts_axis.set(xlabel="predicted probability (top class: confidence)", ylabel="rows")
    figure.tight_layout()
    return figure
