"""Nodes of the tuning pipeline: folds, the study on Dask, the chosen network refit and scored.

What they call lives beside them, one idea a module: the study (``study``), the drivers that
run its trials (``drivers``), its trials on Dask (``executor``) and how a signal stops them
(``signals``), the search space (``search_space``), the ``tuning`` block (``config``),
the baselines (``baselines``), the candidates' scores (``scoring``), the final comparison on
repeated folds (``paired``), trials' tables and MLflow runs (``reports``), and who wins in
words, the summary and its figure (``verdicts``). The study's modules (optuna, distributed)
are imported inside the nodes that need them, so that other pipelines' start-up does not pay
for them.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
from matplotlib import pyplot as plt
from sklearn.model_selection import StratifiedKFold
from torch import nn

from neural_net_lab.datasets.tuned_parameters import TunedParams
from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.engine.cv import cross_validate
from neural_net_lab.engine.ensemble import Ensemble, build_ensemble, load_ensemble, state_of
from neural_net_lab.engine.fit import fit_classifier
from neural_net_lab.linear_baseline import EvaluationParams
from neural_net_lab.serving import (
    ServedModelParams,
    log_served,
    scaled_network,
    tuned_classifier,
)
from neural_net_lab.table import TableSchema, encode_features, encode_labels

from . import paired, reports, scoring, verdicts
from .baselines import check_baselines
from .baselines import tune_baselines as tune_on_folds
from .config import TuningParams
from .search_space import check_space

logger = logging.getLogger(__name__)


def prepare_folds(
    train_split: pd.DataFrame,
    schema: TableSchema,
    tuning: TuningParams,
    model: ModelParams,
    training: TrainingParams,
) -> tuple[dict[str, Any], ModelParams]:
    """The training rows encoded as the network sees them before scaling (float64 inputs,
    text columns one-hot) with their class codes and stratified folds; and the ``model``
    block with the widths the table gives, which every trial, the default network and the
    tuned blocks start from.

    Every check that can fail on the configuration runs here, before any trial.
    """
    network = schema.network(model)
    default_params = check_space(tuning.search_space, network, training)
    check_baselines(tuning.baselines)
    labels = encode_labels(train_split, schema, "training split")
    counts = pd.Series(schema.labels(labels)).value_counts()
    few = counts[counts < tuning.folds]
    if len(few):
        raise ValueError(
            f"tuning.folds is {tuning.folds} but the training split has fewer rows of class(es) "
            f"{ {k: int(n) for k, n in few.sort_index().items()} } in column {schema.target!r}; "
            "lower tuning.folds"
        )
    features = encode_features(train_split, schema, "training split")
    splitter = StratifiedKFold(tuning.folds, shuffle=True, random_state=tuning.fold_seed)
    folds = [(np.asarray(a), np.asarray(b)) for a, b in splitter.split(features, labels)]
    cv_data = {
        "features": features,
        "labels": labels,
        "folds": folds,
        "default_params": default_params,
    }
    return cv_data, network


def run_study(
    *,
    cv_data: dict[str, Any],
    storage: dict[str, str],
    tuning: TuningParams,
    model: ModelParams,
    training: TrainingParams,
) -> tuple[list[Any], str]:
    """Adds ``tuning.n_trials`` trials to the study on Dask; returns all of the study's trials
    and its name (``tuning.study_name``, or its sibling when that study was made on other
    data: ``study.study_name``).

    ``model`` is the block with the table's widths (``prepare_folds``). The default
    configuration is enqueued as a new study's first trial. Each finished trial becomes one
    MLflow child run of the Kedro run and one line in the tuning log, under one progress bar;
    the parent run gets the best value and parameters and the trial counts by state.
    """
    import optuna  # noqa: PLC0415 - only the tuning pipeline pays for optuna and distributed

    from . import executor  # noqa: PLC0415 - same reason
    from . import study as studies  # noqa: PLC0415 - same reason

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    for name in ("distributed", "tornado", "bokeh"):
        logging.getLogger(name).setLevel(logging.ERROR)
    data = {k: cv_data[k] for k in ("features", "labels", "folds")}
    print_ = studies.fingerprint(data, tuning, model, training)
    data_print = studies.data_fingerprint(data, tuning)
    backend = studies.open_storage(storage, tuning.heartbeat)

    def on_result(trial: Any, result: dict[str, Any]) -> None:
        reports.log_trial_run(trial)

    if tuning.n_trials == 0:
        study = studies.load_study(backend, tuning, print_, create=False, data_print=data_print)
    else:
        client, cluster = executor.connect(tuning.dask)
        try:
            parallel = sum(client.nthreads().values()) > 1
            study = studies.load_study(
                backend,
                tuning,
                print_,
                create=True,
                sampler=studies.build_sampler(tuning, parallel),
                pruner=studies.build_pruner(tuning.pruner),
                data_print=data_print,
            )
            if not study.trials:
                study.enqueue_trial(
                    cv_data["default_params"], user_attrs={studies.DEFAULT_TRIAL: True}
                )
            if client.dashboard_link and (tuning.dask.address or tuning.dask.dashboard_address):
                logger.info("Dask dashboard: %s", client.dashboard_link)
            executor.optimize(
                study,
                client,
                data=data,
                tuning=tuning,
                model=model,
                training=training,
                on_result=on_result,
                storage=backend,
            )
        finally:
            client.close()
            if cluster is not None:
                cluster.close()
    trials = study.get_trials(deepcopy=True)
    reports.log_study(trials)
    return trials, study.study_name


def choose_configuration(
    trials: list[Any], model: ModelParams, training: TrainingParams, tuning: TuningParams
) -> TunedParams:
    """The best trial's ``model`` and ``training`` blocks and what is served from them
    (``final``): what tuned_parameters.yml holds. ``model`` carries the table's widths, so
    the file records the table it was tuned for (serving checks them against the schema)."""
    from .search_space import configure  # noqa: PLC0415 - light, kept beside its only use

    best = reports.best_trial(trials)
    tuned_model, tuned_training = configure(model, training, best.user_attrs.get("values", {}))
    return TunedParams(
        model=tuned_model,
        training=tuned_training,
        final=tuning.final,
        ensemble_seeds=tuning.ensemble_seeds,
        trial=best.number,
        cv_accuracy=best.value,
        cv_std=best.user_attrs.get("std_accuracy"),
        fold_accuracy=best.user_attrs.get("fold_accuracy"),
    )


def tuned_environment(tuned: TunedParams) -> dict[str, Any]:
    """The tuned ``model`` and ``training`` blocks as a Kedro configuration environment
    (conf/tuned/parameters.yml): ``kedro run --env tuned`` trains, evaluates, serves and
    prices with them, every pipeline seeing the same blocks."""
    return tuned.blocks()


def refit(
    train_set: pd.DataFrame, model: ModelParams, training: TrainingParams, schema: TableSchema
) -> nn.Module:
    """Trains a configuration (its widths derived) on the whole standardized training split,
    no validation rows."""
    network, _, _ = fit_classifier(
        train_set, train_set.iloc[:0], model, training, schema, description="refit"
    )
    return network


def refit_tuned(train_set: pd.DataFrame, tuned: TunedParams, schema: TableSchema) -> nn.Module:
    """The chosen configuration (tuned_parameters.yml) trained on the whole training split."""
    return refit(train_set, tuned.model, tuned.training, schema)


def tune_baselines(
    cv_data: dict[str, Any], test_split: pd.DataFrame, schema: TableSchema, tuning: TuningParams
) -> tuple[dict[str, dict[str, Any]], dict[str, list[bool]]]:
    """Each ``tuning.baselines`` model tuned on the network's folds, refit on the whole
    training split and scored once on the test split (one MLflow child run each); and which
    test rows each gets right, kept apart from the report for the paired tests. The test
    rows are encoded as the folds' rows are: the baselines see the network's inputs."""
    results = tune_on_folds(
        cv_data["features"],
        cv_data["labels"],
        cv_data["folds"],
        encode_features(test_split, schema, "test split"),
        encode_labels(test_split, schema, "test split"),
        tuning.baselines,
    )
    test_rows = {name: result.pop("test_correct") for name, result in results.items()}
    return results, test_rows


def rebuild_fold_networks(
    cv_data: dict[str, Any], tuned: TunedParams, tuning: TuningParams
) -> tuple[nn.Module, dict[str, Any]]:
    """The chosen trial's fold networks, trained again: each fold with ``ensemble_seeds``
    seeds, all in one stack, each with its fold's scaler.

    The study keeps no networks (a trial's workers return scores only), and a stacked
    training repeats a configuration's folds bit for bit, so they are rebuilt here; this
    works for a resumed study and for ``n_trials: 0``. Seed 0 of every fold is the trial's
    own training: its held-out accuracies must be the trial's stored ones, which is checked
    and reported (``reproduced``).
    """
    cv = cross_validate(
        cv_data["features"],
        cv_data["labels"],
        cv_data["folds"],
        tuned.model,
        tuned.training,
        stacked=tuning.stacked,
        seeds_per_fold=tuning.ensemble_seeds,
        keep_networks=True,
    )
    stored = tuned.fold_accuracy
    reproduced = stored is not None and np.allclose(cv.val_accuracy, stored, rtol=0, atol=1e-9)
    if not reproduced:
        logger.warning(
            "The rebuilt fold networks score %s on their held-out rows; the trial stored %s "
            "(another machine's arithmetic, or a study from before this check)",
            [round(a, 4) for a in cv.val_accuracy],
            stored,
        )
    members = [(m.mean, m.scale, m.state_dict) for m in cv.members]
    check = {
        "members": len(members),
        "seeds_per_fold": tuning.ensemble_seeds,
        "fold_accuracy": cv.val_accuracy,
        "trial_fold_accuracy": stored,
        "reproduced": bool(reproduced),
        "member_cv_accuracy": float(np.mean([m.val_accuracy for m in cv.members])),
    }
    return build_ensemble(members, tuned.model), check


def score_repeated_folds(
    cv_data: dict[str, Any],
    tuned: TunedParams,
    baselines: dict[str, dict[str, Any]],
    tuning: TuningParams,
) -> dict[str, Any]:
    """The served network's kind and every tuned baseline, each as it was tuned, on
    ``tuning.comparison.repeats`` fresh repetitions of the study's k-fold (``paired``)."""
    repeated = paired.score_repeated(
        cv_data["features"], cv_data["labels"], tuned, baselines, tuning
    )
    logger.info(
        "Final comparison: %d×%d repeated folds in %.1f s (network %.1f s)",
        repeated["repeats"],
        repeated["folds"],
        repeated["seconds"],
        repeated["network"]["seconds"],
    )
    return repeated


def score_tuning(
    *,
    ensemble: nn.Module | dict[str, Any],
    ensemble_check: dict[str, Any],
    refit_network: nn.Module | dict[str, Any],
    default_network: nn.Module | dict[str, Any],
    tuned: TunedParams,
    trials: list[Any],
    study_name: str,
    cv_data: dict[str, Any],
    baselines: dict[str, dict[str, Any]],
    baseline_test_rows: dict[str, list[bool]],
    repeated: dict[str, Any],
    test_split: pd.DataFrame,
    scaler: Mapping[str, Any],
    schema: TableSchema,
    evaluation: EvaluationParams,
    tuning: TuningParams,
    model: ModelParams,
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """Every candidate side by side: CV accuracy on the study's folds (mean ± std, 95%
    interval) and test accuracy (Wilson 95% interval), each scored once on the same test
    split; and the served network against each tuned baseline, paired: on the repeated
    folds (corrected resampled t-test) and on the test rows (exact McNemar), in words.
    ``model`` is the default block with the table's widths (``prepare_folds``).

    The candidates: the chosen network as its fold ensemble and as its refit, the tuned
    baselines, the lesson's default configuration and the untuned LogisticRegression (C=1,
    the evaluation pipeline's quick reference). ``tuning.final`` chose what is served before
    any test score existed; the test scores only report.
    """
    classifiers = {
        "ensemble": load_ensemble(state_of(ensemble), tuned.model),
        "refit": scaled_network(scaler, state_of(refit_network), tuned.model, schema),
        "default": scaled_network(scaler, state_of(default_network), model, schema),
    }
    correct = {
        name: scoring.test_correct(classifier, test_split, schema)
        for name, classifier in classifiers.items()
    }
    ratio = paired.test_train_ratio(cv_data["folds"])
    cv = {"ensemble": scoring.chosen_cv(tuned, ratio), "refit": scoring.chosen_cv(tuned, ratio)}
    cv["default"] = scoring.cv_scores(scoring.default_folds(trials), ratio)
    rows = {
        name: cv[name] | scoring.test_scores(int(correct[name].sum()), len(correct[name]))
        for name in classifiers
    }
    rows["ensemble"] |= ensemble_check
    untuned, correct["untuned_baseline"] = scoring.untuned_baseline(
        cv_data, test_split, schema, evaluation
    )
    rows["untuned_baseline"] = scoring.with_intervals(untuned, ratio, correct["untuned_baseline"])
    tuned_baselines = {
        name: scoring.with_intervals(result, ratio, baseline_test_rows[name])
        for name, result in baselines.items()
    }
    comparison = paired.compare(repeated, correct[tuning.final], baseline_test_rows)
    metrics = {
        "study_name": study_name,
        "n_trials": len(trials),
        "trial_states": reports.state_counts(trials),
        "best_trial": tuned.trial,
        "final": tuning.final,
        **rows,
        "baselines": tuned_baselines,
        "comparison": comparison,
        "tuned": {k: rows[tuning.final][k] for k in scoring.SCORES + scoring.INTERVALS},
    }
    metrics["test_accuracy"] = metrics["tuned"]["test_accuracy"]
    metrics["verdict"] = verdicts.verdict(metrics)
    return metrics, scoring.as_mlflow_metrics(metrics)


def comparison_plot(metrics: dict[str, Any]) -> plt.Figure:
    """tuning_comparison.png: every candidate's CV and test accuracy with its interval."""
    return verdicts.comparison_figure(metrics)


def run_description(metrics: dict[str, Any]) -> str:
    """The parent MLflow run's description: the verdicts, readable on the run's page."""
    return verdicts.run_description(metrics)


def served_classifier(
    ensemble: nn.Module | dict[str, Any],
    refit_network: nn.Module | dict[str, Any],
    tuned: TunedParams,
    scaler: Mapping[str, Any],
    schema: TableSchema,
) -> Ensemble:
    """What ``tuning.final`` serves (the fold ensemble or the refit), for its pictures (the
    evaluation's ``model_pictures``, one namespaced instance)."""
    return tuned_classifier(tuned, ensemble, refit_network, scaler, schema)


def trials_report(trials: list[Any]) -> pd.DataFrame:
    """tuning_trials.csv: one row per trial of the whole study."""
    return reports.trials_table(trials)


def summary_report(table: pd.DataFrame, metrics: dict[str, Any]) -> str:
    """tuning_summary.md."""
    return verdicts.summary_markdown(table, metrics)


def study_plots(trials: list[Any]) -> tuple[plt.Figure, plt.Figure]:
    """Optuna's optimization history and parameter importances, over the whole study."""
    import optuna  # noqa: PLC0415 - only the tuning pipeline pays for optuna
    from optuna.visualization import matplotlib as plots  # noqa: PLC0415

    from .study import METRIC  # noqa: PLC0415

    study = optuna.create_study(direction="maximize")
    study.add_trials(trials)
    # Optuna's plots label the objective "Objective Value" unless told its name.
    return (
        reports.figure_of(
            plots.plot_optimization_history,
            study,
            title="optimization history",
            target_name=METRIC,
        ),
        reports.figure_of(
            plots.plot_param_importances, study, title="parameter importances", target_name=METRIC
        ),
    )


def log_tuned_model(
    *,
    ensemble: nn.Module | dict[str, Any],
    refit_network: nn.Module | dict[str, Any],
    tuned: TunedParams,
    scaler: Mapping[str, Any],
    raw_table: pd.DataFrame,
    schema: TableSchema,
    served_model: ServedModelParams,
) -> dict[str, Any]:
    """Logs what ``tuning.final`` chose (the fold ensemble or the refit) as the served MLflow
    model, registered as a new version with the alias ``tuned``; skipped without an active
    run."""
    classifier = tuned_classifier(tuned, ensemble, refit_network, scaler, schema)
    info = log_served(classifier, raw_table, schema, served_model, prefix="tuned_", alias="tuned")
    if info["logged"]:
        info.update(final=tuned.final, members=len(classifier))
    return info
