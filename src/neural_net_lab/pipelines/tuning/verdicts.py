"""Who wins, and how sure: every candidate side by side with its intervals, the served
network's paired verdicts against each tuned baseline in words ("beats", "trails", "no
detectable difference at 95%"), the summary, the comparison figure and the MLflow run's
description. The numbers come from ``paired`` and ``scoring``; this module only says them.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
from matplotlib import pyplot as plt

from neural_net_lab.comparison import said

from .reports import settings_text


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
        (f"{name} (tuned)", name, scores, settings_text(scores["params"]))
        for name, scores in metrics["baselines"].items()
    ]
    rows += [
        ("lesson's default network", None, metrics["default"], "trial 0 (the lesson's settings)"),
        (
            "LogisticRegression C=1 (untuned)",
            None,
            metrics["untuned_baseline"],
            settings_text(metrics["untuned_baseline"].get("params", {})),
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
        f"- {served[0].upper()}{served[1:]} vs {name}: on CV "
        f"{_cv_words(pair['cv'], comparison)}; on the test split "
        f"{_test_words(pair['test'], name)}."
        for name, pair in pairs.items()
    ]
    words = {
        name: {"cv": pair["cv"]["verdict"], "test": pair["test"]["verdict"]}
        for name, pair in pairs.items()
    }
    cv_word, test_word = words[best]["cv"], words[best]["test"]
    if cv_word == test_word:
        told = f"{said(cv_word, best)} both on cross-validation and on the test split"
    else:
        told = (
            f"{said(cv_word, best)} on cross-validation and "
            f"{said(test_word, best)} on the test split"
        )
    headline = f"Against the best tuned baseline on the repeated folds, {best}, {served} {told}."
    return {"best_baseline": best, "pairs": words, "headline": headline, "lines": lines}


def _cv_words(t_test: dict[str, Any], comparison: dict[str, Any]) -> str:
    return (
        f"{t_test['verdict']} (difference {t_test['mean_difference']:+.4f}, 95% CI "
        f"[{t_test['ci_low']:+.4f}, {t_test['ci_high']:+.4f}], p = {t_test['p_value']:.3g}; "
        f"corrected resampled t-test over {comparison['repeats']}×{comparison['folds']} "
        "paired folds)"
    )


def _test_words(mcnemar: dict[str, Any], other: str) -> str:
    return (
        f"{mcnemar['verdict']} (difference {mcnemar['difference']:+.4f}, exact McNemar p = "
        f"{mcnemar['p_value']:.3g}: {mcnemar['a_only']} row(s) only the network gets right, "
        f"{mcnemar['b_only']} only {other})"
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
    comparison = metrics["comparison"]
    repeated = comparison["repeated_cv"]
    figure, axis = plt.subplots(figsize=(9, 0.5 * len(rows) + 2.2))
    for y, (_, key, scores, _) in enumerate(rows):
        if key in repeated:
            cv = ("o", repeated[key]["accuracy"], repeated[key]["ci"])
        else:
            cv = ("s", scores["cv_accuracy"], scores["cv_ci"])
        test = ("D", scores["test_accuracy"], scores["test_ci"])
        for offset, color, (marker, mean, (low, high)) in (
            (-0.12, "tab:blue", cv),
            (0.12, "tab:orange", test),
        ):
            error = [[mean - low], [high - mean]]
            axis.errorbar(mean, y + offset, xerr=error, fmt=marker, color=color, capsize=3)
    for marker, color, label in (
        ("o", "tab:blue", f"CV, {comparison['repeats']}×{comparison['folds']} repeated folds"),
        ("s", "tab:blue", "CV, the study's folds"),
        ("D", "tab:orange", "test split (Wilson)"),
    ):
        axis.errorbar([], [], fmt=marker, color=color, label=label)
    axis.set_yticks(range(len(rows)), [label for label, *_ in rows])
    axis.invert_yaxis()
    axis.set_xlabel("accuracy")
    axis.set_title("Who wins, and how sure: every candidate with its 95% intervals")
    axis.grid(axis="x", alpha=0.3)
    # Below the axes: inside, it would cover the last candidates' intervals.
    axis.legend(loc="upper center", bbox_to_anchor=(0.5, -0.1), ncol=3, fontsize="small")
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
