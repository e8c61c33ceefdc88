"""The tuning block, the search space and the study, without a Kedro session.

Studies here run on a real LocalCluster against a real journal file in a temporary folder.
"""

from __future__ import annotations

import os
import signal
import socket
import time

import numpy as np
import pandas as pd
import pytest
from optuna.distributions import FloatDistribution
from optuna.trial import create_trial

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.pipelines.tuning import drivers, executor
from neural_net_lab.pipelines.tuning import study as studies
from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.pipelines.tuning.nodes import prepare_folds, run_study, study_plots
from neural_net_lab.pipelines.tuning.search_space import check_space, configure
from neural_net_lab.pipelines.tuning.storage import OptunaStorageDataset

from .conftest import tiny_blocks


def _typed(blocks):
    return (
        TuningParams.model_validate(blocks["tuning"]),
        ModelParams.model_validate(blocks["model"]),
        TrainingParams.model_validate(blocks["training"]),
    )


@pytest.fixture(scope="module")
def train_split(raw_phones) -> pd.DataFrame:
    return raw_phones.sample(400, random_state=0).reset_index(drop=True)


@pytest.fixture(scope="module")
def schema(model_inputs):
    return model_inputs["schema"]


def _cv_data(train_split, schema, blocks):
    """The fold data and the model block with the table's widths, as prepare_folds makes them."""
    tuning, model, training = _typed(blocks)
    return prepare_folds(train_split, schema, tuning, model, training)


def _run(train_split, schema, blocks, storage):
    """run_study as the pipeline calls it: the model block from prepare_folds."""
    tuning, _, training = _typed(blocks)
    cv_data, model = _cv_data(train_split, schema, blocks)
    return run_study(
        cv_data=cv_data, storage=storage, tuning=tuning, model=model, training=training
    )


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"folds": 1}, r"tuning\.folds: must be >= 2"),
        ({"n_trials": -1}, r"tuning\.n_trials: must be >= 0"),
        ({"n_trials": None, "timeout": None}, "needs a budget"),
        (
            {"search_space": {"modl.dropout": {"type": "float", "low": 0, "high": 0.5}}},
            "'modl.dropout' must name a parameter of the model or training block",
        ),
        (
            {"search_space": {"model.dropout": {"type": "float", "low": 0.5, "high": 0.1}}},
            r"tuning\.search_space\.model\.dropout: low \(0\.5\) must be below high",
        ),
        (
            {
                "search_space": {
                    "training.l1_lambda": {"type": "float", "low": 0, "high": 1, "log": True}
                }
            },
            r"training\.l1_lambda: a log range needs low > 0",
        ),
        (
            {"search_space": {"model.hidden_dims": {"type": "categorical", "choices": []}}},
            r"model\.hidden_dims: a categorical dimension needs a non-empty list",
        ),
    ],
)
def test_bad_tuning_blocks_are_refused_by_name(change, message):
    with pytest.raises(ValueError, match=message):
        TuningParams.model_validate(tiny_blocks(**change)["tuning"])


@pytest.mark.parametrize(
    ("space", "message"),
    [
        (
            {"model.widths": {"type": "categorical", "choices": [[8]]}},
            r"tuning\.search_space\.model\.widths: the value \[8\] makes invalid parameters",
        ),
        (
            {"training.optimizer.momentum": {"type": "float", "low": 0.1, "high": 0.9}},
            r"training\.optimizer\.momentum: .*Adam has no setting 'momentum'",
        ),
        (
            {"training.epochs": {"type": "int", "low": 5, "high": 9}},
            r"training\.epochs: the default value 2 is outside \[5\.0, 9\.0\]",
        ),
        (
            {"model.hidden_dims": {"type": "categorical", "choices": [[32]]}},
            r"model\.hidden_dims: the default value \[8\] is not among the choices",
        ),
    ],
)
def test_search_space_is_checked_against_the_default_blocks(space, message):
    tuning, model, training = _typed(tiny_blocks(search_space=space))
    with pytest.raises(ValueError, match=message):
        check_space(tuning.search_space, model, training)


def test_a_new_optimizer_name_drops_the_old_optimizers_settings():
    blocks = tiny_blocks()
    blocks["training"]["optimizer"] = {"name": "Adam", "lr": 0.001, "betas": [0.8, 0.9]}
    _, model, training = _typed(blocks)
    values = {
        "training.optimizer.lr": 0.05,
        "training.optimizer": {"name": "SGD", "momentum": 0.9},
        "model.hidden_dims": [16, 8],
    }
    tuned_model, tuned = configure(model, training, values)
    assert tuned.optimizer.name == "SGD"
    assert tuned.optimizer.settings() == {"momentum": 0.9, "lr": 0.05}
    assert tuned_model.hidden_dims == [16, 8]
    assert tuned.epochs == training.epochs  # unsearched settings keep their defaults


def test_the_default_configuration_is_the_first_trial_and_penalties_can_be_zero(
    train_split, schema
):
    data, model = _cv_data(train_split, schema, tiny_blocks())
    assert data["default_params"] == {
        "training.optimizer": '{"name": "Adam"}',
        "training.optimizer.weight_decay:nonzero": False,
        "model.hidden_dims": "[8]",
    }
    sizes = [len(v) for _, v in data["folds"]]
    assert sum(sizes) == 400 and abs(sizes[0] - sizes[1]) <= 1
    assert (model.input_dim, model.n_classes) == (20, 4)  # derived from the table's schema


def test_a_class_with_fewer_rows_than_folds_is_refused(train_split, schema):
    rows = pd.concat(
        [
            train_split[train_split.price_range != 3],
            train_split[train_split.price_range == 3].head(1),
        ]
    )
    with pytest.raises(ValueError, match=r"tuning\.folds is 2 .* class\(es\) \{3: 1\}"):
        _cv_data(rows, schema, tiny_blocks())


def test_refit_of_an_empty_study_is_refused(train_split, schema, tmp_path):
    with pytest.raises(ValueError, match="n_trials is 0 but the study 'test' does not exist"):
        _run(train_split, schema, tiny_blocks(n_trials=0), {"path": str(tmp_path / "j.log")})


def test_a_width_the_table_does_not_give_is_refused_before_any_trial(train_split, schema):
    blocks = tiny_blocks()
    blocks["model"]["n_classes"] = 3
    with pytest.raises(ValueError, match=r"model\.n_classes: is 3 but .* gives 4"):
        _cv_data(train_split, schema, blocks)


def test_an_unreachable_dask_address_is_named(train_split, schema, tmp_path):
    with socket.socket() as probe:  # a free port: nothing listens there
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    blocks = tiny_blocks(dask={"address": f"tcp://127.0.0.1:{port}", "connect_timeout": 1})
    with pytest.raises(
        ValueError,
        match=rf"tuning\.dask\.address: no Dask scheduler answered at tcp://127\.0\.0\.1:{port}",
    ):
        _run(train_split, schema, blocks, {"path": str(tmp_path / "j.log")})
    assert not (tmp_path / "j.log").exists() or "test" not in (tmp_path / "j.log").read_text()


def _trials(train_split, schema, tmp_path, blocks, name="j.log"):
    trials, study_name = _run(train_split, schema, blocks, {"path": str(tmp_path / name)})
    assert study_name == blocks["tuning"]["study_name"]
    return trials


def test_one_worker_and_a_fixed_seed_repeat_the_same_trials(train_split, schema, tmp_path):
    blocks = tiny_blocks(n_trials=4, dask={"n_workers": 1, "dashboard_address": None})
    runs = [_trials(train_split, schema, tmp_path, blocks, name=f"run{i}.log") for i in range(2)]
    for a, b in zip(*runs):
        assert (a.params, a.state, a.value, a.user_attrs.get("fold_accuracy")) == (
            b.params,
            b.state,
            b.value,
            b.user_attrs.get("fold_accuracy"),
        )
    assert len(runs[0]) == 4


def test_trials_with_stacking_off_score_the_same(train_split, schema, tmp_path):
    """tuning.stacked: false trains the folds one after another: the same trial values."""
    runs = [
        _trials(
            train_split,
            schema,
            tmp_path,
            tiny_blocks(
                n_trials=3, stacked=stacked, dask={"n_workers": 1, "dashboard_address": None}
            ),
            name=f"stacked_{stacked}.log",
        )
        for stacked in (True, False)
    ]
    assert [t.state.name for t in runs[0]] == [t.state.name for t in runs[1]]
    for a, b in zip(*runs):
        assert a.params == b.params
        assert a.user_attrs.get("fold_accuracy") == b.user_attrs.get("fold_accuracy")


def test_a_failing_trial_is_recorded_and_the_study_goes_on(train_split, schema, tmp_path):
    trials = _trials(train_split, schema, tmp_path, tiny_blocks())
    states = [t.state.name for t in trials]
    assert len(trials) == 6 and "RUNNING" not in states
    failed = [t for t in trials if t.state.name == "FAIL"]
    assert failed, states  # the seed draws SGD with lr 1e12 at least once
    assert all("training loss is" in t.user_attrs["error"] for t in failed)
    assert all(
        t.params["training.optimizer"] == '{"lr": 1000000000000.0, "name": "SGD"}' for t in failed
    )
    assert trials[0].user_attrs["default_configuration"] and trials[0].state.name == "COMPLETE"


def test_a_worker_killed_mid_study_does_not_lose_the_budget(
    train_split, schema, tmp_path, monkeypatch
):
    """The first result kills one worker process; Dask reruns its trial elsewhere."""
    blocks = tiny_blocks(n_trials=6)
    blocks["training"]["epochs"] = 20  # trials long enough to be killed while running
    killed = []
    optimize = executor.optimize

    def optimize_then_kill(study, client, **kwargs):
        on_result = kwargs.pop("on_result")

        def kill_once(trial, result):
            if not killed:
                busy = [w for w, tasks in client.processing().items() if tasks]
                victim = (busy or list(client.scheduler_info()["workers"]))[0]
                pid = client.run(os.getpid, workers=[victim])[victim]
                os.kill(pid, signal.SIGKILL)
                killed.append(pid)
            on_result(trial, result)

        return optimize(study, client, on_result=kill_once, **kwargs)

    monkeypatch.setattr(executor, "optimize", optimize_then_kill)
    trials = _trials(train_split, schema, tmp_path, blocks)
    assert killed
    assert len(trials) == 6
    assert {t.state.name for t in trials} <= {"COMPLETE", "FAIL"}
    assert sum(t.state.name == "COMPLETE" for t in trials) >= 3
    assert np.isfinite([t.value for t in trials if t.state.name == "COMPLETE"]).all()


def test_trials_left_running_by_a_dead_run_are_failed_by_age(tmp_path):
    tuning, _, _ = _typed(tiny_blocks())
    storage = studies.open_storage({"path": str(tmp_path / "j.log")})
    study = studies.load_study(storage, tuning, "print", create=True)
    study.ask()  # a trial whose run died: never told
    assert drivers.fail_stale_trials(study, storage, stale_after=3600) == []
    time.sleep(0.05)
    assert drivers.fail_stale_trials(study, storage, stale_after=0.01) == [0]
    (trial,) = study.trials
    assert trial.state.name == "FAIL" and trial.user_attrs["error"].startswith("stale")


def test_the_study_storage_url_comes_from_credentials_only(tmp_path):
    journal = OptunaStorageDataset(path=str(tmp_path / "study.journal"))
    assert journal.load() == {"path": str(tmp_path / "study.journal")}
    secret = OptunaStorageDataset(credentials={"url": "postgresql://u:SECRET@db/optuna"})
    assert secret.load() == {"url": "postgresql://u:SECRET@db/optuna"}
    assert "SECRET" not in str(secret)


def test_the_study_plots_name_the_objective_cv_accuracy():
    """Optuna's plots say "Objective Value" unless given the objective's name."""
    space = {"lr": FloatDistribution(1e-4, 1e-1, log=True), "dropout": FloatDistribution(0, 0.5)}
    trials = [
        create_trial(params={"lr": lr, "dropout": d}, distributions=space, value=0.8 + d / 10)
        for lr, d in [(1e-3, 0.1), (1e-2, 0.4), (3e-4, 0.2), (5e-2, 0.0)]
    ]
    history, importances = study_plots(trials)
    assert history.axes[0].get_ylabel() == "cv_accuracy"
    texts = [t.get_text() for ax in importances.axes for t in ax.texts]
    texts += [
        t.get_text() for ax in importances.axes if ax.get_legend() for t in ax.get_legend().texts
    ]
    assert not any("Objective Value" in t for t in texts), texts
