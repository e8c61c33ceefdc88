"""What a study shows: its trials as a table and as MLflow child runs, the best trial, plots."""

from __future__ import annotations

import json
import logging
import warnings
from collections import Counter
from collections.abc import Sequence
from typing import Any

import mlflow
import pandas as pd
from matplotlib import pyplot as plt
from mlflow.entities import Param

from neural_net_lab.engine.tracking import flatten_params, log_batch, log_history_and_metrics

logger = logging.getLogger(__name__)

STATES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")


def best_trial(trials: Sequence[Any]) -> Any:
    """The complete trial with the highest mean CV accuracy; the lower mean validation
    log-loss breaks ties (accuracy on a few hundred rows ties often)."""
    complete = [t for t in trials if t.state.name == "COMPLETE"]
    if not complete:
        raise ValueError(
            "the study has no complete trial to choose from: run more trials "
            "(tuning.n_trials > 0) or check the failed trials' errors in tuning_trials.csv"
        )
    return max(complete, key=lambda t: (t.value, -t.user_attrs.get("mean_log_loss", 0.0)))


def state_counts(trials: Sequence[Any]) -> dict[str, int]:
    counts = Counter(t.state.name for t in trials)
    return {state.lower(): counts.get(state, 0) for state in STATES}


def trial_line(trial: Any) -> str:
    """The one line per trial of the tuning log (``progress``)."""
    attrs = trial.user_attrs
    score = (
        f"CV accuracy {trial.value:.4f} ± {attrs.get('std_accuracy', 0):.4f}"
        if trial.value is not None and trial.state.name == "COMPLETE"
        else f"after {attrs.get('epochs_run', 0)} epochs"
        if trial.state.name == "PRUNED"
        else attrs.get("error", "")
    )
    seconds = _duration(trial)
    values = ", ".join(
        f"{k.split('.')[-1]}={_short(v)}" for k, v in attrs.get("values", {}).items()
    )
    return (
        f"trial {trial.number} {trial.state.name.lower()}: {score} "
        f"({seconds:.1f} s on {attrs.get('worker', '?')}) {values}"
    )


def trials_table(trials: Sequence[Any]) -> pd.DataFrame:
    """One row per trial: number, state, sampled values, CV scores, duration, worker."""
    rows = []
    for trial in trials:
        attrs = trial.user_attrs
        row = {
            "number": trial.number,
            "state": trial.state.name.lower(),
            "default": bool(attrs.get("default_configuration", False)),
        }
        row.update({k: _cell(v) for k, v in attrs.get("values", {}).items()})
        row.update(
            mean_cv_accuracy=trial.value if trial.state.name == "COMPLETE" else None,
            std_cv_accuracy=attrs.get("std_accuracy"),
            mean_cv_log_loss=attrs.get("mean_log_loss"),
            epochs_run=attrs.get("epochs_run"),
            duration_s=round(_duration(trial), 2),
            worker=attrs.get("worker"),
            error=attrs.get("error"),
        )
        rows.append(row)
    return pd.DataFrame(rows)


def log_study(trials: Sequence[Any]) -> None:
    """The best trial's value, number and values and the trial counts by state, in the active
    (Kedro) run; nothing without one. Raises when no trial completed."""
    best = best_trial(trials)
    if mlflow.active_run() is None:
        return
    counts = state_counts(trials)
    mlflow.log_metrics(
        {"tuning.best_cv_accuracy": best.value, "tuning.best_trial": best.number}
        | {f"tuning.trials_{state}": n for state, n in counts.items()}
    )
    values = best.user_attrs.get("values", {})
    mlflow.log_params({f"tuning.best.{k}": str(v)[:6000] for k, v in values.items()})


def log_trial_run(trial: Any) -> str | None:
    """One finished child run of the active (Kedro) run per trial, with the trial's own start
    and end; nothing without a run.

    Logged by the driver from the trial's result, so that workers need no tracking store.
    """
    parent = mlflow.active_run()
    if parent is None:
        return None
    attrs = trial.user_attrs
    state = trial.state.name.lower()
    tags = {
        "mlflow.parentRunId": parent.info.run_id,
        "mlflow.runName": f"trial_{trial.number}",
        "optuna.trial_number": str(trial.number),
        "optuna.state": state,
        "dask.worker": str(attrs.get("worker", "")),
        "optuna.study": str(attrs.get("study", "")),
    }
    if attrs.get("error"):
        tags["optuna.error"] = str(attrs["error"])[:5000]
    if attrs.get("default_configuration"):
        tags["optuna.default_configuration"] = "true"
    client = mlflow.MlflowClient()
    start = int(trial.datetime_start.timestamp() * 1000)
    end = int((trial.datetime_complete or trial.datetime_start).timestamp() * 1000)
    run = client.create_run(parent.info.experiment_id, start_time=start, tags=tags)
    params = [Param(k, str(v)[:6000]) for k, v in flatten_params(attrs.get("values", {})).items()]
    log_batch(run.info.run_id, params=params)
    metrics = {f"fold_{f}_val_accuracy": v for f, v in enumerate(attrs.get("fold_accuracy", []))}
    metrics |= {
        k: attrs[k]
        for k in ("std_accuracy", "mean_log_loss", "epochs_run")
        if attrs.get(k) is not None
    }
    if trial.state.name == "COMPLETE":
        metrics["mean_accuracy"] = trial.value
    # The per-epoch mean over folds, one step per epoch: the pruner's view, overlaid in the UI.
    curve = [v for _, v in sorted(trial.intermediate_values.items())]
    log_history_and_metrics(run.info.run_id, {"mean_val_accuracy": curve}, metrics)
    client.set_terminated(
        run.info.run_id, "FAILED" if state == "fail" else "FINISHED", end_time=end
    )
    return run.info.run_id


def figure_of(plot: Any, *args: Any, title: str, **options: Any) -> plt.Figure:
    """An Optuna matplotlib plot as a figure; a note in its place when it cannot be drawn
    (importances need two complete trials that differ)."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Optuna marks its matplotlib plots experimental
        try:
            axis = plot(*args, **options)
            figure = axis.figure if hasattr(axis, "figure") else axis.flat[0].figure
        except (ValueError, RuntimeError, ZeroDivisionError) as error:
            figure, axis = plt.subplots(figsize=(6, 2))
            axis.axis("off")
            axis.text(0.5, 0.5, f"{title}: not enough trials ({error})", ha="center", wrap=True)
    figure.set_size_inches(8, 5)
    figure.tight_layout()
    return figure


def candidates(metrics: dict[str, Any]) -> list[tuple[str, str | None, dict[str, Any], str]]:
    """Every scored candidate as (label, key of its repeated-CV scores or None, scores,
    settings), in the report's order."""
    final, ensemble, trial = metrics["final"], metrics["ensemble"], metrics["best_trial"]
    folds = ensemble["members"] // ensemble["seeds_per_fold"]
    rows = [
        (
            f"network, fold ensemble{' (served)' if final == 'ensemble' else ''}",
            "network" if final == "ensemble" else None,
            ensemble,
            f"trial {trial}: {folds} folds × {ensemble['seeds_per_fold']} seed(s), "
            "each network with its fold's scaler",
        ),
        (
            f"network, refit{' (served)' if final == 'refit' else ''}",
            "network" if final == "refit" else None,
            metrics["refit"],
            f"trial {trial}: one network on the whole training split",
        ),
    ]
    rows += [
        (f"{name} (tuned)", name, scores, _settings(scores["params"]))
        for name, scores in metrics["baselines"].items()
    ]
    rows += [
        ("lesson's default network", None, metrics["default"], "trial 0 (the lesson's settings)"),
        (
            "LogisticRegression C=1 (untuned)",
            None,
            metrics["untuned_baseline"],
            _settings(metrics["untuned_baseline"].get("params", {})),
        ),
    ]
    return rows


def served_name(final: str) -> str:
    return f"the network's {'fold ensemble' if final == 'ensemble' else 'refit'}"


def verdict(metrics: dict[str, Any]) -> dict[str, Any]:
    """Who wins, and how sure, in words: the served network against each tuned baseline on
    the repeated folds (corrected resampled t-test) and on the test split (exact McNemar),
    each "beats", "trails" or "no detectable difference at 95%" with its numbers; the
    headline is the pair with the best baseline on the repeated folds."""
    comparison = metrics["comparison"]
    served = served_name(metrics["final"])
    pairs, best = comparison["pairs"], comparison["best_baseline"]
    if not pairs:
        line = "No tuned baseline was configured (tuning.baselines): nothing to compare."
        return {"best_baseline": None, "pairs": {}, "headline": line, "lines": []}
    lines = [
        f"- {served[0].upper()}{served[1:]} vs {name}: on CV {_cv_words(pair['cv'], comparison)}; on the test split "
        f"{_test_words(pair['test'], name)}."
        for name, pair in pairs.items()
    ]
    words = {
        name: {"cv": pair["cv"]["verdict"], "test": pair["test"]["verdict"]}
        for name, pair in pairs.items()
    }
    cv_word, test_word = words[best]["cv"], words[best]["test"]
    if cv_word == test_word:
        said = f"{_phrase(cv_word, best)} both on cross-validation and on the test split"
    else:
        said = (
            f"{_phrase(cv_word, best)} on cross-validation and "
            f"{_phrase(test_word, best)} on the test split"
        )
    headline = f"Against the best tuned baseline on the repeated folds, {best}, {served} {said}."
    return {"best_baseline": best, "pairs": words, "headline": headline, "lines": lines}


def _phrase(word: str, other: str) -> str:
    return f"{word} {other}" if word in ("beats", "trails") else f"shows {word} from {other}"


def _cv_words(test: dict[str, Any], comparison: dict[str, Any]) -> str:
    return (
        f"{test['verdict']} (difference {test['mean_difference']:+.4f}, 95% CI "
        f"[{test['ci_low']:+.4f}, {test['ci_high']:+.4f}], p = {test['p_value']:.3g}; corrected "
        f"resampled t-test over {comparison['repeats']}×{comparison['folds']} paired folds)"
    )


def _test_words(test: dict[str, Any], other: str) -> str:
    return (
        f"{test['verdict']} (difference {test['difference']:+.4f}, exact McNemar p = "
        f"{test['p_value']:.3g}: {test['a_only']} row(s) only the network gets right, "
        f"{test['b_only']} only {other})"
    )


def run_description(metrics: dict[str, Any]) -> str:
    """What the parent run's page in the MLflow UI shows as its description (Markdown): the
    served model, the verdicts and where the rest is."""
    verdict_ = metrics["verdict"]
    return "\n".join(
        [
            f"**Who wins, and how sure.** Served: {served_name(metrics['final'])} (trial "
            f"{metrics['best_trial']}), test accuracy {metrics['tuned']['test_accuracy']:.4f} "
            f"(Wilson 95% CI {_interval(metrics['tuned']['test_ci'])}).",
            "",
            verdict_["headline"],
            "",
            *verdict_["lines"],
            "",
            "Every candidate with its intervals: artifacts `tuning_summary.md` and "
            "`tuning_comparison.png`.",
        ]
    )


def comparison_figure(metrics: dict[str, Any]) -> plt.Figure:
    """Each candidate's CV accuracy with its 95% interval (on the repeated folds where it was
    scored there, else on the study's folds) and its test accuracy with its Wilson interval,
    side by side."""
    rows = candidates(metrics)
    repeated = metrics["comparison"]["repeated_cv"]
    figure, axis = plt.subplots(figsize=(9, 0.5 * len(rows) + 1.8))
    for y, (label, key, scores, _) in enumerate(rows):
        if key in repeated:
            mean, (low, high), marker = repeated[key]["accuracy"], repeated[key]["ci"], "o"
        else:
            mean, (low, high), marker = scores["cv_accuracy"], scores["cv_ci"], "s"
        axis.errorbar(
            mean,
            y - 0.12,
            xerr=[[mean - low], [high - mean]],
            fmt=marker,
            color="tab:blue",
            capsize=3,
            label="_cv",
        )
        test, (t_low, t_high) = scores["test_accuracy"], scores["test_ci"]
        axis.errorbar(
            test,
            y + 0.12,
            xerr=[[test - t_low], [t_high - test]],
            fmt="D",
            color="tab:orange",
            capsize=3,
            label="_test",
        )
    comparison = metrics["comparison"]
    axis.errorbar(
        [],
        [],
        fmt="o",
        color="tab:blue",
        label=f"CV, {comparison['repeats']}×{comparison['folds']} repeated folds (95% CI)",
    )
    axis.errorbar([], [], fmt="s", color="tab:blue", label="CV, the study's folds (95% CI)")
    axis.errorbar([], [], fmt="D", color="tab:orange", label="test split (Wilson 95% CI)")
    axis.set_yticks(range(len(rows)), [label for label, *_ in rows])
    axis.invert_yaxis()
    axis.set_xlabel("accuracy")
    axis.set_title("Who wins, and how sure: every candidate with its 95% intervals")
    axis.grid(axis="x", alpha=0.3)
    axis.legend(loc="lower left", fontsize="small")
    figure.tight_layout()
    return figure


def summary_markdown(table: pd.DataFrame, metrics: dict[str, Any], top: int = 10) -> str:
    """The Markdown summary: who wins and how sure in words, every candidate side by side with
    its intervals, the best trials."""
    states = ", ".join(f"{n} {s}" for s, n in metrics["trial_states"].items() if n)
    ensemble, comparison = metrics["ensemble"], metrics["comparison"]
    repeated = comparison["repeated_cv"]
    r, k = comparison["repeats"], comparison["folds"]
    lines = [
        "# Tuning summary",
        "",
        f"Study `{metrics['study_name']}`: {metrics['n_trials']} trials ({states}). "
        f"Best trial: {metrics['best_trial']}. Served (`tuning.final`, chosen before any test "
        f"score): **{metrics['final']}**; the fold ensemble has {ensemble['members']} networks "
        f"({ensemble['seeds_per_fold']} seed(s) per fold).",
        "",
        "## Who wins, and how sure",
        "",
        metrics["verdict"]["headline"],
        "",
        *metrics["verdict"]["lines"],
        "",
        f"The repeated folds are {r} fresh repetitions of stratified {k}-fold CV of the training "
        f"split (`tuning.comparison`, seed {comparison['seed']}), the network as served "
        f"({comparison['members_per_fold']} member(s) per fold) and each baseline with the "
        "settings it was tuned to. The hyperparameters of every candidate were chosen on these "
        "same rows (the study's folds), so every CV score here is somewhat optimistic; the "
        "test split is the one look at rows that chose nothing. The t-test's variance is "
        "corrected for the folds' shared training rows (Nadeau & Bengio 2003); McNemar's test "
        "counts the test rows where exactly one of the two is right.",
        "",
        f"| candidate | CV accuracy, study's folds: mean ± std [95% CI] | CV accuracy, {r}×{k} "
        "repeated folds [95% CI] | test accuracy [Wilson 95% CI] | settings |",
        "|---|---|---|---|---|",
    ]
    for label, key, scores, settings in candidates(metrics):
        again = (
            f"{repeated[key]['accuracy']:.4f} {_interval(repeated[key]['ci'])}"
            if key in repeated
            else "–"
        )
        lines.append(
            f"| {label} | {scores['cv_accuracy']:.4f} ± {scores['cv_std']:.4f} "
            f"{_interval(scores['cv_ci'])} | {again} | {scores['test_accuracy']:.4f} "
            f"{_interval(scores['test_ci'])} | {settings} |"
        )
    if not ensemble["reproduced"]:
        lines += [
            "",
            f"The rebuilt fold networks scored {ensemble['fold_accuracy']} on their held-out "
            f"rows, not the trial's {ensemble['trial_fold_accuracy']}.",
        ]
    shown = table[table["state"] == "complete"].sort_values("mean_cv_accuracy", ascending=False)
    lines += [
        "",
        f"## Best {min(top, len(shown))} complete trials",
        "",
        shown.head(top).drop(columns=["error", "state"]).to_markdown(index=False),
        "",
    ]
    return "\n".join(lines)


def _interval(bounds: Sequence[float]) -> str:
    low, high = bounds
    return f"[{low:.4f}, {high:.4f}]"


def _duration(trial: Any) -> float:
    if trial.datetime_start is None or trial.datetime_complete is None:
        return 0.0
    return (trial.datetime_complete - trial.datetime_start).total_seconds()


def _settings(params: dict[str, Any]) -> str:
    return ", ".join(f"{key}={_short(value)}" for key, value in params.items())


def _cell(value: Any) -> Any:
    return value if isinstance(value, int | float | str | bool) else json.dumps(value)


def _short(value: Any) -> str:
    if isinstance(value, float):
        return f"{value:.3g}"
    if isinstance(value, dict):
        return str(value.get("name", value))
    return str(value)
