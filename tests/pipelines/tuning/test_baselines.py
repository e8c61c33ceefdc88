"""Baselines tuned on the study's folds: real scikit-learn on the shipped table's training split,
real Optuna, and a temporary MLflow SQLite store. Grids are small so that this file takes
seconds."""

from __future__ import annotations

import mlflow
import numpy as np
import pandas as pd
import pytest
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import SVC

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.pipelines.tuning import nodes
from neural_net_lab.pipelines.tuning.baselines import (
    BaselineParams,
    check_baselines,
    tune_baselines,
)
from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.pipelines.tuning.nodes import prepare_folds
from neural_net_lab.table import encode_features, encode_labels

from .conftest import SHIPPED, tiny_blocks

LOGISTIC = {
    "estimator": "sklearn.linear_model.LogisticRegression",
    "settings": {"max_iter": 5000},
    "grid": {"C": [1.0e-2, 1.0, 1.0e2]},
}
SVC_OPTUNA = {
    "estimator": "sklearn.svm.SVC",
    "search": "optuna",
    "space": {
        "C": {"type": "float", "low": 1.0, "high": 1.0e4, "log": True},
        "gamma": {"type": "float", "low": 1.0e-4, "high": 1.0e-1, "log": True},
    },
    "n_trials": 3,
}


def _typed(**entries) -> dict[str, BaselineParams]:
    return {name: BaselineParams.model_validate(entry) for name, entry in entries.items()}


@pytest.fixture(scope="module")
def data(model_inputs):
    """The unscaled training split and its folds, made by the tuning pipeline's own node, and
    the unscaled test split."""
    schema, test = model_inputs["schema"], model_inputs["test_split"]
    cv, _ = prepare_folds(
        model_inputs["train_split"],
        schema,
        TuningParams.model_validate(SHIPPED["tuning"]),
        ModelParams.model_validate(SHIPPED["model"]),
        TrainingParams.model_validate(SHIPPED["training"]),
    )
    cv["test_features"] = encode_features(test, schema, "test split")
    cv["test_labels"] = encode_labels(test, schema, "test split")
    cv["ram"] = schema.inputs.index("ram")
    return cv


def _tune(data, baselines, folds=None, features=None):
    return tune_baselines(
        data["features"] if features is None else features,
        data["labels"],
        data["folds"] if folds is None else folds,
        data["test_features"],
        data["test_labels"],
        baselines,
    )


def test_a_grid_chooses_by_cv_on_the_study_folds_and_scores_the_test_split_once(data):
    result = _tune(data, _typed(logistic_regression=LOGISTIC))["logistic_regression"]

    def pipeline(c):
        # random_state: the entry's seed, given to every estimator that takes one.
        return make_pipeline(
            StandardScaler(), LogisticRegression(C=c, max_iter=5000, random_state=42)
        )

    by_c = {
        c: cross_val_score(
            pipeline(c), data["features"], data["labels"], cv=data["folds"], scoring="accuracy"
        )
        for c in LOGISTIC["grid"]["C"]
    }
    chosen = result["params"]["C"]
    assert result["params"] == {"C": chosen} and chosen in LOGISTIC["grid"]["C"]
    assert by_c[chosen].mean() == max(s.mean() for s in by_c.values())
    assert result["fold_accuracy"] == pytest.approx(by_c[chosen].tolist(), abs=1e-12)
    assert result["cv_accuracy"] == pytest.approx(by_c[chosen].mean(), abs=1e-12)
    assert result["cv_std"] == pytest.approx(by_c[chosen].std(), abs=1e-12)
    refit = pipeline(chosen).fit(data["features"], data["labels"])
    assert result["test_accuracy"] == refit.score(data["test_features"], data["test_labels"])
    assert result["estimator"] == LOGISTIC["estimator"] and result["seconds"] > 0


def test_an_optuna_search_is_seeded_and_scores_its_choice_on_the_same_folds(data):
    first, again = (_tune(data, _typed(svc=SVC_OPTUNA))["svc"] for _ in range(2))

    assert {k: v for k, v in first.items() if k != "seconds"} == {
        k: v for k, v in again.items() if k != "seconds"
    }
    space = SVC_OPTUNA["space"]
    assert set(first["params"]) == {"C", "gamma"}
    assert all(space[k]["low"] <= v <= space[k]["high"] for k, v in first["params"].items())
    scores = cross_val_score(
        make_pipeline(StandardScaler(), SVC(**first["params"])),
        data["features"],
        data["labels"],
        cv=data["folds"],
    )
    assert first["cv_accuracy"] == pytest.approx(scores.mean(), abs=1e-12)


def test_the_scaler_is_fitted_on_each_folds_training_rows_only(data):
    """The held-out phones of class 0 get 10^6 MB less RAM. A scaler fitted on the fold's
    training rows leaves them far below every training phone, so they are still priced in
    class 0 and the fold's accuracy stays high. A scaler fitted on all rows would take its
    RAM scale from those outliers, squash the training rows' RAM to nearly one value and
    leave a model that cannot price by RAM (checked below, by hand, to be far worse)."""
    train, held_out = data["folds"][0]
    features = data["features"].copy()
    cheap = held_out[data["labels"][held_out] == 0]
    features[cheap, data["ram"]] -= 1.0e6
    entry = _typed(logistic_regression={**LOGISTIC, "grid": {"C": [1.0]}})

    result = _tune(data, entry, folds=[(train, held_out)], features=features)
    fold_accuracy = result["logistic_regression"]["fold_accuracy"][0]

    def accuracy(scaler_rows):
        scaler = StandardScaler().fit(features[scaler_rows])
        model = LogisticRegression(max_iter=5000, random_state=42)
        model.fit(scaler.transform(features[train]), data["labels"][train])
        return model.score(scaler.transform(features[held_out]), data["labels"][held_out])

    all_rows = np.arange(len(features))
    assert fold_accuracy == pytest.approx(accuracy(train), abs=1e-12)
    assert fold_accuracy > 0.9 and accuracy(all_rows) < 0.6


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (
            {"estimator": "sklearn.linear_model.LogisticRegresion"},
            r"^tuning\.baselines\.bad\.estimator: cannot import 'sklearn\.linear_model\.Log",
        ),
        (
            {"estimator": "LogisticRegression"},
            r"^tuning\.baselines\.bad\.estimator: cannot import 'LogisticRegression'",
        ),
        (
            {"estimator": "sklearn.linear_model.LinearRegression", "settings": {}},
            r"^tuning\.baselines\.bad\.estimator: .*LinearRegression is not a classifier",
        ),
        (
            {"estimator": "collections.OrderedDict"},
            r"^tuning\.baselines\.bad\.estimator: 'collections\.OrderedDict' is not an estimator",
        ),
        (
            {"grid": {"Cs": [1.0]}},
            r"^tuning\.baselines\.bad\.grid\.Cs: LogisticRegression takes no argument 'Cs'",
        ),
        (
            {"settings": {"max_iters": 100}},
            r"^tuning\.baselines\.bad\.settings\.max_iters: LogisticRegression takes no argument",
        ),
        (
            {"grid": {"C": [1.0, -1.0]}},
            r"^tuning\.baselines\.bad\.grid\.C: The 'C' parameter of LogisticRegression must be",
        ),
        (
            {"settings": {"max_iter": 5000, "solver": "lbgfs"}},
            r"^tuning\.baselines\.bad\.settings\.solver: The 'solver' parameter .* Got 'lbgfs'",
        ),
    ],
)
def test_bad_estimators_and_arguments_are_refused_before_any_fit_by_their_path(change, message):
    with pytest.raises(ValueError, match=message):
        check_baselines(_typed(bad={**LOGISTIC, **change}))


def test_an_optuna_dimension_the_estimator_does_not_take_is_refused_by_its_path():
    space = {**SVC_OPTUNA["space"], "gama": SVC_OPTUNA["space"]["gamma"]}
    with pytest.raises(ValueError, match=r"^tuning\.baselines\.bad\.space\.gama: SVC takes no"):
        check_baselines(_typed(bad={**SVC_OPTUNA, "space": space}))


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"settings": {"C": 1.0}}, r"bad\.settings\.C: 'C' is searched, so it cannot also be"),
        ({"search": "optuna"}, r"bad: an optuna search takes space and n_trials, not a grid"),
        ({"n_trials": 5}, r"bad: a grid search takes a grid, not space or n_trials"),
        ({"grid": {"C": []}}, r"bad\.grid\.C: must hold at least 1 item"),
        ({"seach": "grid"}, r"bad\.seach: unknown setting"),
    ],
)
def test_inconsistent_entries_are_refused_by_the_model(change, message):
    with pytest.raises(ValueError, match=message):
        BaselineParams.at("tuning.baselines.bad").model_validate({**LOGISTIC, **change})


def test_each_baseline_is_one_child_run_of_the_active_run(data, client):
    experiment = mlflow.get_experiment_by_name("baselines").experiment_id
    baselines = _typed(logistic_regression=LOGISTIC, svc=SVC_OPTUNA)
    _tune(data, baselines)
    assert client.search_runs([experiment]) == []  # no active run: nothing is logged

    with mlflow.start_run(run_name="kedro") as parent:
        results = _tune(data, baselines)
    runs = {r.info.run_name: r for r in client.search_runs([experiment])}

    assert set(runs) == {"kedro", "logistic_regression", "svc"}
    for name, result in results.items():
        run = runs[name]
        assert run.data.tags["mlflow.parentRunId"] == parent.info.run_id
        assert run.info.status == "FINISHED"
        assert run.data.params["estimator"] == result["estimator"]
        assert {k: float(run.data.params[f"best.{k}"]) for k in result["params"]} == result[
            "params"
        ]
        metrics = run.data.metrics
        assert metrics["mean_accuracy"] == pytest.approx(result["cv_accuracy"])
        assert metrics["std_accuracy"] == pytest.approx(result["cv_std"])
        assert metrics["test_accuracy"] == pytest.approx(result["test_accuracy"])
        folds = [metrics[f"fold_{i}_val_accuracy"] for i in range(len(data["folds"]))]
        assert folds == pytest.approx(result["fold_accuracy"])
    assert runs["logistic_regression"].data.params["settings.max_iter"] == "5000"
    assert runs["logistic_regression"].data.params["grid.C"] == "[0.01, 1.0, 100.0]"
    assert runs["svc"].data.params["space.C.low"] == "1.0"
    assert runs["kedro"].data.metrics == {}  # the parent's own logging is the pipeline's


def test_a_solver_stopped_at_its_cap_is_one_line_not_a_warning_per_fit(data, caplog, recwarn):
    capped = {**LOGISTIC, "settings": {"max_iter": 2}, "grid": {"C": [1.0e2]}}
    with caplog.at_level("WARNING", logger="neural_net_lab.pipelines.tuning.baselines"):
        result = _tune(data, _typed(capped=capped))["capped"]
    assert not [w for w in recwarn if "converge" in str(w.message)]
    (line,) = [r.getMessage() for r in caplog.records if "iteration cap" in r.getMessage()]
    # 5 folds and the refit, each stopped at 2 iterations; the scores are still reported.
    assert line.startswith("Baseline capped: 6 fit(s) stopped at the solver's iteration cap")
    assert 0.25 < result["test_accuracy"] <= 1


def test_the_baselines_see_the_networks_one_hot_inputs(clinic):
    """A text column reaches the baselines one-hot encoded with the training split's
    categories, as it reaches the network: the node's scores are those of a pipeline fitted
    by hand on pandas' one-hot columns and the class codes."""
    schema, train, test = clinic["schema"], clinic["train_split"], clinic["test_split"]
    blocks = tiny_blocks(
        folds=3, baselines={"logistic_regression": {**LOGISTIC, "grid": {"C": [1.0]}}}
    )
    tuning = TuningParams.model_validate(blocks["tuning"])
    model, training = (
        ModelParams.model_validate(blocks["model"]),
        TrainingParams.model_validate(blocks["training"]),
    )
    cv, _ = prepare_folds(train, schema, tuning, model, training)
    results, test_rows = nodes.tune_baselines(cv, test, schema, tuning)
    result = results["logistic_regression"]

    def one_hot(split):
        shapes = pd.Categorical(split["shape"], categories=schema.categories["shape"])
        dummies = pd.get_dummies(shapes, prefix="shape", dtype="float64")
        return pd.concat([split[schema.numeric], dummies], axis=1)[schema.inputs].to_numpy()

    def codes(split):
        return pd.Index(schema.classes).get_indexer(split["diagnosis"])

    assert schema.categories == {"shape": ["jagged", "oval", "round"]}
    assert cv["features"] == pytest.approx(one_hot(train), abs=0)
    pipeline = make_pipeline(
        StandardScaler(), LogisticRegression(C=1.0, max_iter=5000, random_state=42)
    )
    folds = cross_val_score(pipeline, one_hot(train), codes(train), cv=cv["folds"])
    assert result["fold_accuracy"] == pytest.approx(folds.tolist(), abs=1e-12)
    refit = pipeline.fit(one_hot(train), codes(train))
    assert result["test_accuracy"] == refit.score(one_hot(test), codes(test))
