"""Nodes of the tuning pipeline: folds, the study on Dask, the chosen network refit and scored.

The study's modules (optuna, distributed) are imported inside the nodes that need them, so
that other pipelines' start-up does not pay for them.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Mapping
from typing import Any

import mlflow
import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import StratifiedKFold, cross_val_score
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from neural_net_lab.engine.config import ColumnsParams, ModelParams, TrainingParams
from neural_net_lab.engine.data import accuracy, predict_logits, to_tensors
from neural_net_lab.engine.fit import fit_classifier
from neural_net_lab.engine.model import load_mlp
from neural_net_lab.pipelines.evaluation.nodes import EvaluationParams, score_logistic_baseline
from neural_net_lab.pipelines.training.nodes import ServedModelParams
from neural_net_lab.serving import log_phone_price_classifier

from . import reports
from .config import TuningParams
from .search_space import check_space

logger = logging.getLogger(__name__)


def prepare_folds(
    train_split: pd.DataFrame,
    columns: ColumnsParams,
    tuning: TuningParams,
    model: ModelParams,
    training: TrainingParams,
) -> dict[str, Any]:
    """The unscaled training rows and their stratified folds; checks the search space.

    Every check that can fail on the configuration runs here, before any trial.
    """
    default_params = check_space(tuning.search_space, model, training)
    labels = train_split[columns.target].to_numpy()
    counts = pd.Series(labels).value_counts()
    few = counts[counts < tuning.folds]
    if len(few):
        raise ValueError(
            f"tuning.folds is {tuning.folds} but the training split has fewer rows of class(es) "
            f"{ {k: int(n) for k, n in few.sort_index().items()} } in column {columns.target!r}; lower tuning.folds"
        )
    features = train_split[columns.features].to_numpy(dtype=np.float64)
    splitter = StratifiedKFold(tuning.folds, shuffle=True, random_state=tuning.fold_seed)
    folds = [(np.asarray(a), np.asarray(b)) for a, b in splitter.split(features, labels)]
    return {
        "features": features,
        "labels": labels,
        "folds": folds,
        "default_params": default_params,
    }


def run_study(
    *,
    cv_data: dict[str, Any],
    storage: dict[str, str],
    tuning: TuningParams,
    model: ModelParams,
    training: TrainingParams,
) -> list[Any]:
    """Adds ``tuning.n_trials`` trials to the study on Dask; returns all of the study's trials.

    The default configuration is enqueued as a new study's first trial. Each finished trial
    becomes one MLflow child run of the Kedro run and one console line; the parent run gets
    the best value and parameters and the trial counts by state.
    """
    import optuna  # noqa: PLC0415 - only the tuning pipeline pays for optuna and distributed

    from . import study as studies  # noqa: PLC0415 - same reason

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("distributed", "tornado", "bokeh"):
        logging.getLogger(name).setLevel(logging.ERROR)
    data = {k: cv_data[k] for k in ("features", "labels", "folds")}
    print_ = studies.fingerprint(data, tuning, model, training)
    backend = studies.open_storage(storage)
    parent = mlflow.active_run()
    experiment_id = parent.info.experiment_id if parent else None

    def on_result(trial: Any, result: dict[str, Any]) -> None:
        logger.info(reports.trial_line(trial))
        if parent is not None:
            reports.log_trial_run(trial, parent.info.run_id, experiment_id)

    if tuning.n_trials == 0:
        study = studies.load_study(backend, tuning, print_, create=False)
    else:
        client, cluster = studies.connect(tuning.dask)
        try:
            parallel = sum(client.nthreads().values()) > 1
            study = studies.load_study(
                backend,
                tuning,
                print_,
                create=True,
                sampler=studies.build_sampler(tuning, parallel),
                pruner=studies.build_pruner(tuning.pruner),
            )
            stale = studies.fail_stale_trials(study, tuning.stale_after)
            if stale:
                logger.warning("Trials %s were left running by a dead run: failed", stale)
            if not study.trials:
                study.enqueue_trial(
                    cv_data["default_params"], user_attrs={studies.DEFAULT_TRIAL: True}
                )
            if client.dashboard_link and (tuning.dask.address or tuning.dask.dashboard_address):
                logger.info("Dask dashboard: %s", client.dashboard_link)
            started = time.perf_counter()
            ran = studies.optimize(
                study,
                client,
                data=data,
                tuning=tuning,
                model=model,
                training=training,
                on_result=on_result,
            )
            logger.info("%d trials in %.1f s", ran, time.perf_counter() - started)
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    trials = study.get_trials(deepcopy=True)
    best = reports.best_trial(trials)
    if parent is not None:
        counts = reports.state_counts(trials)
        mlflow.log_metrics(
            {"tuning.best_cv_accuracy": best.value, "tuning.best_trial": best.number}
            | {f"tuning.trials_{state}": n for state, n in counts.items()}
        )
        mlflow.log_params(
            {
                f"tuning.best.{k}": str(v)[:6000]
                for k, v in best.user_attrs.get("values", {}).items()
            }
        )
    return trials


def choose_configuration(
    trials: list[Any], model: ModelParams, training: TrainingParams
) -> dict[str, Any]:
    """The best trial's ``model`` and ``training`` blocks (what tuned_parameters.yml holds)."""
    from .search_space import configure  # noqa: PLC0415 - light, kept beside its only use

    best = reports.best_trial(trials)
    tuned_model, tuned_training = configure(model, training, best.user_attrs.get("values", {}))
    return {
        "model": tuned_model.model_dump(),
        "training": tuned_training.model_dump(exclude_none=True),
        "trial": best.number,
        "cv_accuracy": best.value,
    }


def tuned_environment(tuned: dict[str, Any]) -> dict[str, Any]:
    """The tuned ``model`` and ``training`` blocks as a Kedro configuration environment
    (conf/tuned/parameters.yml): ``kedro run --env tuned`` trains, evaluates, serves and
    prices with them, every pipeline seeing the same blocks."""
    return {"model": tuned["model"], "training": tuned["training"]}


def refit(
    train_set: pd.DataFrame, model: ModelParams, training: TrainingParams, columns: ColumnsParams
) -> nn.Module:
    """Trains a configuration on the whole (standardized) training split, no validation rows."""
    network, _, _ = fit_classifier(
        train_set, train_set.iloc[:0], model, training, columns, description="refit"
    )
    return network


def refit_tuned(
    train_set: pd.DataFrame, tuned: dict[str, Any], columns: ColumnsParams
) -> nn.Module:
    """The chosen configuration (tuned_parameters.yml) trained on the whole training split."""
    model, training = blocks_of(tuned)
    return refit(train_set, model, training, columns)


def blocks_of(tuned: Mapping[str, Any]) -> tuple[ModelParams, TrainingParams]:
    """The typed ``model`` and ``training`` blocks of a tuned_parameters.yml."""
    missing = [k for k in ("model", "training") if k not in tuned]
    if missing:
        raise ValueError(f"tuned parameters lack the block(s) {missing}")
    return ModelParams.model_validate(tuned["model"]), TrainingParams.model_validate(
        tuned["training"]
    )


def tuned_model_block(tuned: dict[str, Any]) -> ModelParams:
    """The tuned network's ``model`` block (its widths), for pricing phones with it."""
    return blocks_of(tuned)[0]


def score_tuning(
    *,
    tuned_network: nn.Module | dict[str, Any],
    default_network: nn.Module | dict[str, Any],
    tuned: dict[str, Any],
    trials: list[Any],
    cv_data: dict[str, Any],
    train_set: pd.DataFrame,
    test_set: pd.DataFrame,
    columns: ColumnsParams,
    evaluation: EvaluationParams,
    tuning: TuningParams,
    model: ModelParams,
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Test accuracy of the tuned network, the default configuration retrained the same way
    and the LogisticRegression baseline, on the same test split, with their CV means on the
    same folds. The test split is used here only, once per configuration."""
    tuned_model, _ = blocks_of(tuned)
    features, labels = to_tensors(test_set, columns.features, columns.target)
    default = [t for t in trials if t.user_attrs.get("default_configuration")]
    defaults_cv = default[0].value if default and default[0].state.name == "COMPLETE" else None
    baseline = score_logistic_baseline(train_set, test_set, columns, evaluation)
    baseline_cv = cross_val_score(
        make_pipeline(StandardScaler(), LogisticRegression(**evaluation.baseline.model_dump())),
        cv_data["features"],
        cv_data["labels"],
        cv=cv_data["folds"],
        scoring="accuracy",
    ).mean()
    metrics = {
        "study_name": tuning.study_name,
        "n_trials": len(trials),
        "trial_states": reports.state_counts(trials),
        "best_trial": tuned["trial"],
        "tuned": {
            "cv_accuracy": float(tuned["cv_accuracy"]),
            "test_accuracy": _test_accuracy(tuned_network, tuned_model, features, labels),
        },
        "default": {
            "cv_accuracy": float(defaults_cv) if defaults_cv is not None else float("nan"),
            "test_accuracy": _test_accuracy(default_network, model, features, labels),
        },
        "baseline": {
            "cv_accuracy": float(baseline_cv),
            "test_accuracy": baseline["baseline_test_accuracy"],
        },
    }
    metrics["test_accuracy"] = metrics["tuned"]["test_accuracy"]
    flat = {
        f"tuning.{name}_{key}": {"value": value, "step": 0}
        for name in ("tuned", "default", "baseline")
        for key, value in metrics[name].items()
    }
    return metrics, flat


def _test_accuracy(network: nn.Module | dict, model: ModelParams, x, y) -> float:
    if not isinstance(network, nn.Module):  # a state dict, as the catalog loads it
        network = load_mlp(network, model.model_dump())
    return accuracy(predict_logits(network, x), y)


def trials_report(trials: list[Any]) -> pd.DataFrame:
    """tuning_trials.csv: one row per trial of the whole study."""
    return reports.trials_table(trials)


def summary_report(table: pd.DataFrame, metrics: dict[str, Any]) -> str:
    """tuning_summary.md."""
    return reports.summary_markdown(table, metrics)


def study_plots(trials: list[Any]) -> tuple[plt.Figure, plt.Figure]:
    """Optuna's optimization history and parameter importances, over the whole study."""
    import optuna  # noqa: PLC0415 - only the tuning pipeline pays for optuna
    from optuna.visualization import matplotlib as plots  # noqa: PLC0415

    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    return (
        reports.figure_of(plots.plot_optimization_history, study, title="optimization history"),
        reports.figure_of(plots.plot_param_importances, study, title="parameter importances"),
    )


def log_tuned_model(
    *,
    tuned_network: nn.Module | dict[str, Any],
    tuned: dict[str, Any],
    scaler: Mapping[str, Any],
    raw_phones: pd.DataFrame,
    columns: ColumnsParams,
    served_model: ServedModelParams,
) -> dict[str, Any]:
    """Logs the tuned network as the served MLflow model, registered as a new version with
    the alias ``tuned``; skipped without an active run."""
    if mlflow.active_run() is None:
        logger.info("No active MLflow run: the tuned model is not logged")
        return {"logged": False}
    model, _ = blocks_of(tuned)
    network = tuned_network
    if not isinstance(network, nn.Module):
        network = load_mlp(network, model.model_dump())
    name = served_model.registered_model_name
    info = log_phone_price_classifier(
        scaler,
        network,
        raw_phones.head(served_model.example_rows),
        columns,
        name=f"tuned_{served_model.name}",
        registered_model_name=name,
    )
    if name:
        mlflow.MlflowClient().set_registered_model_alias(
            name, "tuned", info.registered_model_version
        )
    return {
        "logged": True,
        "run_id": info.run_id,
        "model_uri": f"models:/{name}@tuned" if name else info.model_uri,
        "registered_model_name": name,
        "registered_model_version": info.registered_model_version,
    }
