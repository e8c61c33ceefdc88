"""The final comparison on real models (``paired``): a table made so that one side must win
gets "beats" or "trails" on the repeated folds and on the test rows, two copies of one model
get no detectable difference, and the fresh folds are not the study's."""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from neural_net_lab.comparison import NO_DIFFERENCE
from neural_net_lab.datasets.tuned_parameters import TunedParams
from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.pipelines.tuning import nodes, paired, scoring, verdicts
from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.serving import scaled_network
from tests.tables import make_table

from .conftest import schema_and_splits, tiny_blocks

BASELINES = {
    "logistic_regression": {
        "estimator": "sklearn.linear_model.LogisticRegression",
        "settings": {"max_iter": 1000},
        "grid": {"C": [1.0]},
    },
    # Always the most frequent class: a baseline a working network must beat.
    "majority": {
        "estimator": "sklearn.dummy.DummyClassifier",
        "settings": {"strategy": "most_frequent"},
    },
}


@pytest.fixture(scope="module")
def linear_table() -> dict[str, Any]:
    """Two classes split by a noisy linear score: a linear model scores about 0.9."""
    table = make_table(["low", "high"], n_rows=400, n_features=4, seed=5)
    return schema_and_splits(table, "label", "linear table")


def _network(hidden: list[int], epochs: int, lr: float, schema) -> TunedParams:
    model = schema.network(ModelParams(hidden_dims=hidden, dropout=0.0))
    training = TrainingParams.model_validate(
        {"epochs": epochs, "batch_size": 32, "optimizer": {"name": "SGD", "lr": lr}}
        | {"progress": False, "seed": 42}
    )
    return TunedParams(model=model, training=training, final="refit")


def _study_folds(
    table: dict[str, Any], **tuning_changes: Any
) -> tuple[dict[str, Any], TuningParams, dict[str, Any]]:
    """The study's 5 folds as the pipeline's first node makes them, its typed ``tuning``
    block, and the blocks."""
    blocks = tiny_blocks(folds=5, **tuning_changes)
    tuning = TuningParams.model_validate(blocks["tuning"])
    cv_data, _ = nodes.prepare_folds(
        table["train_split"],
        table["schema"],
        tuning,
        ModelParams.model_validate(blocks["model"]),
        TrainingParams.model_validate(blocks["training"]),
    )
    return cv_data, tuning, blocks


def _compare(
    table: dict[str, Any], tuned: TunedParams, configured: dict[str, Any] = BASELINES
) -> dict[str, Any]:
    """What the pipeline's nodes make of it: the repeated folds, then the served network (the
    refit) against both baselines on the repeated folds and the test rows."""
    schema, test = table["schema"], table["test_split"]
    cv_data, tuning, _ = _study_folds(
        table, baselines=configured, comparison={"repeats": 2, "seed": 7, "n_jobs": 1}
    )
    baselines, test_rows = nodes.tune_baselines(cv_data, test, schema, tuning)
    repeated = nodes.score_repeated_folds(cv_data, tuned, baselines, tuning)
    refit = nodes.refit_tuned(table["train_set"], tuned, schema)
    served = scaled_network(table["scaler"], refit.state_dict(), tuned.model, schema)
    correct = scoring.test_correct(served, test, schema)
    return paired.compare(repeated, correct, test_rows) | {
        "repeated": repeated,
        "baselines": baselines,
        "test_rows": test_rows,
    }


def test_a_crippled_network_trails_the_linear_model_and_a_working_one_beats_the_majority(
    linear_table,
):
    schema = linear_table["schema"]
    # One hidden unit, one epoch at a learning rate that barely moves it: near chance.
    crippled = _compare(linear_table, _network([1], epochs=1, lr=1e-5, schema=schema))
    assert crippled["pairs"]["logistic_regression"]["cv"]["verdict"] == "trails"
    assert crippled["pairs"]["logistic_regression"]["test"]["verdict"] == "trails"
    assert crippled["best_baseline"] == "logistic_regression"
    assert crippled["repeated_cv"]["logistic_regression"]["accuracy"] > 0.85
    assert crippled["repeated_cv"]["network"]["accuracy"] < 0.7

    working = _compare(linear_table, _network([16], epochs=30, lr=0.1, schema=schema))
    assert working["pairs"]["majority"]["cv"]["verdict"] == "beats"
    assert working["pairs"]["majority"]["test"]["verdict"] == "beats"
    # 2 repetitions of 5 folds: 10 paired differences, n_test/n_train about 1/4.
    cv = working["pairs"]["majority"]["cv"]
    assert cv["folds"] == 10 and cv["test_train_ratio"] == pytest.approx(0.25, abs=0.01)
    assert len(working["repeated"]["baselines"]["majority"]) == 10


def test_two_copies_of_one_model_show_no_detectable_difference(linear_table):
    """The linear model in the network's seat: the same folds, the same test rows."""
    schema, test = linear_table["schema"], linear_table["test_split"]
    result = _compare(linear_table, _network([1], epochs=1, lr=1e-5, schema=schema))
    repeated = result["repeated"]
    folds, rows = repeated["baselines"]["logistic_regression"], result["test_rows"]
    repeated["network"]["fold_accuracy"] = list(folds)
    same = paired.compare(repeated, rows["logistic_regression"].copy(), rows)
    pair = same["pairs"]["logistic_regression"]
    assert pair["cv"]["verdict"] == pair["test"]["verdict"] == NO_DIFFERENCE
    assert (pair["cv"]["p_value"], pair["test"]["p_value"]) == (1.0, 1.0)
    assert pair["test"]["a_only"] == pair["test"]["b_only"] == 0
    # The copy's test rows are those of the linear model tune_baselines refit and scored.
    assert len(rows["logistic_regression"]) == len(test)
    assert np.mean(rows["logistic_regression"]) == pytest.approx(
        result["baselines"]["logistic_regression"]["test_accuracy"]
    )


def test_the_repeated_folds_are_fresh_and_the_study_seed_is_refused(linear_table):
    cv_data, tuning, blocks = _study_folds(
        linear_table, fold_seed=66, comparison={"repeats": 3, "seed": 7}
    )
    features, labels = cv_data["features"], cv_data["labels"]
    fresh = paired.repeated_folds(features, labels, tuning)
    assert len(fresh) == 15
    study = {tuple(sorted(held)) for _, held in cv_data["folds"]}
    assert not study & {tuple(sorted(held)) for _, held in fresh}
    # Why the seed must differ: RepeatedStratifiedKFold's first repetition with the study's
    # fold seed is the study's own folds.
    same_seed = tuning.model_copy(deep=True)
    same_seed.comparison.seed = 66  # past TuningParams' own check, which refuses it below
    first = paired.repeated_folds(features, labels, same_seed)[:5]
    assert {tuple(sorted(held)) for _, held in first} == study
    blocks["tuning"]["comparison"]["seed"] = 66
    with pytest.raises(ValueError, match=r"comparison.seed \(66\) equals fold_seed"):
        TuningParams.model_validate(blocks["tuning"])


def test_without_tuned_baselines_the_network_still_gets_its_interval(linear_table):
    schema = linear_table["schema"]
    tuned = _network([16], epochs=5, lr=0.1, schema=schema)
    result = _compare(linear_table, tuned, configured={})
    assert result["pairs"] == {} and result["best_baseline"] is None
    network = result["repeated_cv"]["network"]
    assert len(network["fold_accuracy"]) == 10
    assert 0 <= network["ci"][0] <= network["accuracy"] <= network["ci"][1] <= 1
    said = verdicts.verdict({"comparison": result, "final": "refit"})
    assert said["headline"].startswith("No tuned baseline was configured (tuning.baselines)")
