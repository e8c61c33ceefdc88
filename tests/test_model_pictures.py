"""model_pictures: the expected calibration error against sums done by hand, the scikit-learn
adapter inside ``permutation_importance``, and importances named by the user's columns (a
text column once), on networks whose weights the tests set so that one column decides."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from matplotlib import pyplot as plt
from sklearn.inspection import permutation_importance
from torch import nn

from neural_net_lab.engine.config import ColumnsParams
from neural_net_lab.engine.ensemble import Ensemble, ScaledNetwork
from neural_net_lab.model_pictures import (
    FittedClassifier,
    calibration,
    expected_calibration_error,
    feature_importance,
    importance_figure,
    reliability_figure,
)
from neural_net_lab.table import DataProcessingParams, TableSchema, derive_schema


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def two_class(confidence: list[float], correct: list[bool]) -> tuple[np.ndarray, np.ndarray]:
    """Two-class probabilities whose top class (class 0) has ``confidence``, and labels that
    make each row right or wrong."""
    top = np.asarray(confidence)
    probabilities = np.column_stack([top, 1 - top])
    return probabilities, np.where(correct, 0, 1)


def test_ece_of_ten_rows_summed_by_hand():
    # 5 bins of width 0.2. Four rows in (0.6, 0.8] (0.8 sits on an edge: the lower bin, as
    # calibration_curve bins), the two at 0.75 right; six rows at 0.9, five right.
    probabilities, labels = two_class(
        [0.75, 0.75, 0.8, 0.8, 0.9, 0.9, 0.9, 0.9, 0.9, 0.9],
        [True, True, False, False, True, True, True, True, True, False],
    )
    by_hand = 4 / 10 * abs(2 / 4 - (0.75 + 0.75 + 0.8 + 0.8) / 4) + 6 / 10 * abs(5 / 6 - 0.9)
    assert by_hand == pytest.approx(0.15)
    assert expected_calibration_error(probabilities, labels, bins=5) == pytest.approx(by_hand)


def test_calibrated_rows_have_no_ece_and_overconfident_ones_the_gap():
    # 70 % right at confidence 0.7, 90 % right at 0.9: calibrated in every bin.
    confidence = [0.7] * 10 + [0.9] * 10
    correct = [True] * 7 + [False] * 3 + [True] * 9 + [False]
    probabilities, labels = two_class(confidence, correct)
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(0, abs=1e-12)
    # 95 % sure, right 60 % of the time: the gap is the error.
    probabilities, labels = two_class([0.95] * 10, [True] * 6 + [False] * 4)
    assert expected_calibration_error(probabilities, labels, bins=10) == pytest.approx(0.35)


def test_ece_reads_the_top_class_of_any_number_of_classes():
    probabilities = np.array([[0.2, 0.5, 0.3], [0.1, 0.1, 0.8], [0.6, 0.3, 0.1]])
    labels = np.array([1, 0, 0])  # right, wrong, right
    # bins of 0.5: (0, 0.5] holds 0.5 (right), (0.5, 1] holds 0.8 (wrong) and 0.6 (right).
    by_hand = 1 / 3 * abs(1 - 0.5) + 2 / 3 * abs(1 / 2 - 0.7)
    assert expected_calibration_error(probabilities, labels, bins=2) == pytest.approx(by_hand)


# ---- networks whose weights are set: one column decides the label ---------------------------


def linear_ensemble(weight: list[list[float]], width: int) -> Ensemble:
    """An ensemble of one linear layer (logits = raw inputs @ weight.T), scaler the identity."""
    layer = nn.Linear(width, len(weight))
    with torch.no_grad():
        layer.weight.copy_(torch.tensor(weight))
        layer.bias.zero_()
    return Ensemble([ScaledNetwork(np.zeros(width), np.ones(width), nn.Sequential(layer))])


def schema_of(table: pd.DataFrame) -> TableSchema:
    _, schema = derive_schema(table, ColumnsParams(target="label"), DataProcessingParams())
    return schema


@pytest.fixture(scope="module")
def numeric_table() -> pd.DataFrame:
    """``signal`` decides the label ("yes" when positive); ``noise_a``, ``noise_b`` do not."""
    rng = np.random.default_rng(0)
    table = pd.DataFrame(rng.normal(size=(200, 3)), columns=["noise_a", "signal", "noise_b"])
    table["label"] = np.where(table["signal"] > 0, "yes", "no")
    return table


@pytest.fixture(scope="module")
def decided_by_signal(numeric_table) -> tuple[Ensemble, TableSchema]:
    schema = schema_of(numeric_table)
    assert schema.classes == ["no", "yes"] and schema.inputs == ["noise_a", "signal", "noise_b"]
    # Logit of "yes" minus logit of "no" is 20 · signal; the noise columns weigh nothing.
    return linear_ensemble([[0, 0, 0], [0, 20, 0]], 3), schema


def test_the_adapter_runs_inside_permutation_importance(numeric_table, decided_by_signal):
    network, schema = decided_by_signal
    features = numeric_table[schema.features]
    codes = schema.codes(numeric_table["label"], "test")
    estimator = FittedClassifier(network, schema).fit(features, codes)
    assert estimator.classes_.tolist() == [0, 1]
    assert estimator.score(features, codes) == 1.0
    result = permutation_importance(estimator, features, codes, n_repeats=5, random_state=0)
    noise_a, signal, noise_b = result.importances_mean
    assert noise_a == noise_b == 0.0  # their weights are zero: shuffling changes nothing
    assert signal > 0.3  # a shuffled sign is wrong about half the time


def importances_of_the_raw_columns(network, table, schema, n_repeats, seed) -> dict:
    """scikit-learn's permutation importance of the adapter on the raw feature columns: what
    ``feature_importance`` gives, by column, with the rows encoded once."""
    features = table[schema.features]
    codes = schema.codes(table["label"], "test")
    estimator = FittedClassifier(network, schema).fit(features, codes)
    result = permutation_importance(
        estimator, features, codes, scoring="accuracy", n_repeats=n_repeats, random_state=seed
    )
    return {
        column: (result.importances_mean[i], result.importances_std[i])
        for i, column in enumerate(schema.features)
    }


def by_column(importance: dict) -> dict:
    return {
        row["feature"]: (row["importance_mean"], row["importance_std"])
        for row in importance["features"]
    }


def test_importance_is_sorted_and_named_by_the_columns(numeric_table, decided_by_signal):
    network, schema = decided_by_signal
    importance = feature_importance(network, numeric_table, schema, n_repeats=5, seed=0)
    assert importance["baseline_accuracy"] == 1.0
    assert importance["n_repeats"] == 5 and importance["scoring"] == "accuracy"
    names = [row["feature"] for row in importance["features"]]
    assert names[0] == "signal" and sorted(names) == ["noise_a", "noise_b", "signal"]
    means = [row["importance_mean"] for row in importance["features"]]
    assert means == sorted(means, reverse=True)
    assert importance["features"][0]["importance_std"] > 0
    raw = importances_of_the_raw_columns(network, numeric_table, schema, n_repeats=5, seed=0)
    assert by_column(importance) == raw  # shuffle for shuffle, bit for bit


def test_same_seed_same_importances_another_seed_other_shuffles(numeric_table, decided_by_signal):
    network, schema = decided_by_signal
    first = feature_importance(network, numeric_table, schema, n_repeats=3, seed=7)
    assert feature_importance(network, numeric_table, schema, n_repeats=3, seed=7) == first
    other = feature_importance(network, numeric_table, schema, n_repeats=3, seed=8)
    assert other["features"][0]["importance_mean"] != first["features"][0]["importance_mean"]


def test_a_text_column_is_shuffled_and_named_as_one_column():
    rng = np.random.default_rng(1)
    colour = rng.choice(["blue", "green", "red"], size=240)
    table = pd.DataFrame({"x0": rng.normal(size=240), "colour": colour, "x1": rng.normal(size=240)})
    table["label"] = np.where(table["colour"] == "red", "hot", "cold")
    schema = schema_of(table)
    assert schema.inputs == ["x0", "colour_blue", "colour_green", "colour_red", "x1"]
    # "hot" when colour_red is 1: three inputs, one column.
    network = linear_ensemble([[0, 5, 5, 0, 0], [0, 0, 0, 10, 0]], 5)
    importance = feature_importance(network, table, schema, n_repeats=4, seed=0)
    names = [row["feature"] for row in importance["features"]]
    assert names == ["colour", "x0", "x1"]  # the user's columns, the text one once
    assert importance["features"][0]["importance_mean"] > 0.2
    assert [row["importance_mean"] for row in importance["features"][1:]] == [0.0, 0.0]
    assert by_column(importance) == importances_of_the_raw_columns(network, table, schema, 4, 0)

    figure = importance_figure(importance, f"{schema.name}: permutation importance")
    axis = figure.axes[0]
    assert [t.get_text() for t in axis.get_yticklabels()] == ["x1", "x0", "colour"]  # top: most
    assert axis.get_title().splitlines()[0] == "phone price table: permutation importance"


def test_calibration_names_the_labels_and_matches_the_ece(numeric_table):
    schema = schema_of(numeric_table)
    # A softer network: probabilities spread over the bins.
    network = linear_ensemble([[0, 0, 0], [0.3, 2, 0]], 3)
    result = calibration(network, numeric_table, schema, bins=10)
    probabilities = network.probabilities(numeric_table[schema.features].to_numpy())
    codes = schema.codes(numeric_table["label"], "test")
    assert result["expected_calibration_error"] == pytest.approx(
        expected_calibration_error(probabilities, codes, bins=10)
    )
    assert set(result["one_vs_rest"]) == {"no", "yes"}
    for curve in result["one_vs_rest"].values():  # the rows behind each point
        assert len(curve["count"]) == len(curve["prob_true"]) and min(curve["count"]) > 0
        assert sum(curve["count"]) == len(numeric_table)
    filled = [b for b in result["top_class"] if b["count"]]
    assert sum(b["count"] for b in result["top_class"]) == len(numeric_table)
    assert all(b["lower"] < b["confidence"] <= b["upper"] for b in filled)
    assert result["accuracy"] == pytest.approx(np.mean(probabilities.argmax(1) == codes))

    figure = reliability_figure(result, "numbers: reliability")
    legend = [t.get_text() for t in figure.axes[0].get_legend().get_texts()]
    ece = result["expected_calibration_error"]
    assert legend == [
        "perfectly calibrated",
        "no vs rest",
        "yes vs rest",
        f"top class (ECE {ece:.3f})",
    ]
