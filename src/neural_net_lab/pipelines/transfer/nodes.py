"""Nodes of the transfer strategies: each strategy trained at every learning-curve point as
an MLflow child run, the linear reference on the same rows, and the curve's table and plot.
The new market's rows are prepared in ``market``; the networks are cut and grown in
``surgery``."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import pandas as pd
import torch
from matplotlib import pyplot as plt
from sklearn.linear_model import LogisticRegression
from torch import nn

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.engine.data import to_tensors
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.engine.fit import split_accuracy
from neural_net_lab.engine.overrides import with_overrides
from neural_net_lab.engine.seeding import seed_everything
from neural_net_lab.engine.tracking import child_run, log_curves, log_history_and_metrics
from neural_net_lab.engine.training import Member, train
from neural_net_lab.reporting import markdown_table
from neural_net_lab.table import TableSchema

from .params import StrategyParams, TransferParams
from .surgery import build_target_network, parameter_groups


def fit_strategy(
    subset: pd.DataFrame,
    pretrained: Mapping[str, torch.Tensor],
    *,
    model: ModelParams,
    training: TrainingParams,
    strategy: StrategyParams,
    schema: TableSchema,
    seed: int,
) -> tuple[nn.Sequential, dict[str, list[float]], float]:
    """Builds the strategy's network (``model``: the source widths with the new market's
    classes) and trains it on ``subset``: model, history, seconds."""
    generator = seed_everything(seed)  # before building: the new head's init draws from it
    network = build_target_network(pretrained, model, strategy)
    groups = parameter_groups(network, training.optimizer.lr, strategy.hidden_lr_factor)
    features, labels = to_tensors(subset, schema.inputs, schema.target)
    description = f"{strategy.name} on {len(subset)} rows"
    member = Member(network, features, labels, generator, parameters=groups, name=description)
    started = time.perf_counter()
    history = train([member], training)[0]
    return network, history, time.perf_counter() - started


def run_strategy(  # noqa: PLR0917 - Kedro passes a node's inputs by position
    train_set: pd.DataFrame,
    test_set: pd.DataFrame,
    subsets: list[dict[str, Any]],
    pretrained: dict[str, torch.Tensor],
    model: ModelParams,
    training: TrainingParams,
    transfer: TransferParams,
    schema: TableSchema,
    *,
    strategy: str,
) -> tuple[nn.Module, dict[str, Any]]:
    """Trains one strategy at every learning-curve point and logs it as an MLflow child run.

    Returns the network trained on all training rows (first repeat) and the curve points.
    Every strategy sees the same subsets, seeds and budget; the test rows only score.
    """
    settings = transfer.strategies[strategy]
    training_cfg = with_overrides(training, transfer.training, "transfer.training")
    if training_cfg.optimizer.lr is None:
        raise ParameterError(
            "transfer.training.optimizer.lr must be set: the parameter groups scale it"
        )
    # The source's widths with a head of the new market's classes.
    target_model = schema.network(model.model_copy(update={"n_classes": None}))
    params = {
        "strategy": settings.dump(),
        # validation_share is not used: all the few rows train, the test split scores.
        "training": {k: v for k, v in training_cfg.dump().items() if k != "validation_share"},
        "model": target_model.dump(),
        "learning_curve": transfer.learning_curve.dump(),
    }
    with child_run(settings.name, params) as run_id:
        points, final = [], None
        for point in subsets:
            subset = train_set.iloc[point["index"]]
            network, history, seconds = fit_strategy(
                subset,
                pretrained,
                model=target_model,
                training=training_cfg,
                strategy=settings,
                schema=schema,
                seed=training_cfg.seed + point["repeat"],
            )
            points.append(
                {
                    "strategy": settings.name,
                    "rows": point["rows"],
                    "repeat": point["repeat"],
                    "train_accuracy": split_accuracy(network, subset, schema),
                    "test_accuracy": split_accuracy(network, test_set, schema),
                    "training_seconds": seconds,
                }
            )
            if point["rows"] == len(train_set) and point["repeat"] == 0:
                final = (network, history, points[-1]["test_accuracy"])
        network, history, final_accuracy = final
        curve = (
            pd.DataFrame(points)
            .groupby("rows")
            .agg(
                test_accuracy=("test_accuracy", "mean"),
                training_seconds=("training_seconds", "median"),
            )
        )
        metrics = {"test_accuracy": final_accuracy}  # the saved model's; curve points are means
        for rows, row in curve.iterrows():
            metrics[f"test_accuracy_{rows}_rows"] = row["test_accuracy"]
            metrics[f"training_seconds_{rows}_rows"] = row["training_seconds"]
        log_history_and_metrics(run_id, history, metrics)
        # The curve with step = training rows: sibling runs overlay in the UI.
        keys = ("test_accuracy", "training_seconds")
        log_curves(run_id, {f"curve_{key}": curve[key].to_dict() for key in keys})
    result = {
        "name": settings.name,
        "strategy": settings.dump(),
        "points": points,
        "history": history,
        "metrics": metrics,
        "mlflow_run_id": run_id,
    }
    return network, result


def score_linear_baseline(
    train_set: pd.DataFrame,
    test_set: pd.DataFrame,
    subsets: list[dict[str, Any]],
    schema: TableSchema,
    transfer: TransferParams,
) -> dict[str, Any]:
    """LogisticRegression on the same curve points: what a linear model gets from the rows alone."""
    features, target = list(schema.inputs), schema.target
    points = []
    for point in subsets:
        subset = train_set.iloc[point["index"]]
        started = time.perf_counter()
        model = LogisticRegression(**transfer.baseline.model_dump()).fit(
            subset[features], subset[target]
        )
        seconds = time.perf_counter() - started
        points.append(
            {
                "strategy": "logistic_regression",
                "rows": point["rows"],
                "repeat": point["repeat"],
                "train_accuracy": float(model.score(subset[features], subset[target])),
                "test_accuracy": float(model.score(test_set[features], test_set[target])),
                "training_seconds": seconds,
            }
        )
    return {"name": "logistic_regression", "points": points}


def summarize_learning_curve(*results: dict[str, Any]) -> tuple[pd.DataFrame, str, plt.Figure]:
    """Learning-curve table (mean and spread over repeats), its Markdown and a plot."""
    points = pd.DataFrame([p for result in results for p in result["points"]])
    table = (
        points.groupby(["strategy", "rows"], sort=False)
        .agg(
            test_accuracy=("test_accuracy", "mean"),
            test_accuracy_std=("test_accuracy", "std"),
            train_accuracy=("train_accuracy", "mean"),
            # Median: one fit slowed by another process must not move the point.
            training_seconds=("training_seconds", "median"),
            repeats=("repeat", "count"),
        )
        .reset_index()
        .sort_values(["rows", "strategy"], kind="stable")
        .reset_index(drop=True)
    )
    table["test_accuracy_std"] = table["test_accuracy_std"].fillna(0.0)
    repeats = int(table["repeats"].max())
    markdown = markdown_table(
        table,
        "Transfer to the new market: learning curve",
        [
            f"Each row: mean over {repeats} repeat(s) (different nested stratified subsets and "
            "seeds; std = sample standard deviation of test accuracy across them; training "
            "seconds = median time of one fit, noisy on a shared machine). The test "
            "split of the new market is the same for every point and never used to choose.",
            "freeze: pretrained hidden layers frozen, new head trained; finetune: every layer "
            "trained, the pretrained ones at a lower learning rate; scratch: same network, "
            "random init, same budget. logistic_regression: a linear model on the same rows, "
            "for reference.",
        ],
    )
    figure, (accuracy_axis, time_axis) = plt.subplots(1, 2, figsize=(11, 4.2))
    for name, group in table.groupby("strategy", sort=False):
        style = {
            "marker": "o",
            "label": name,
            "linestyle": "--" if name == "logistic_regression" else "-",
        }
        accuracy_axis.errorbar(
            group["rows"],
            group["test_accuracy"],
            yerr=group["test_accuracy_std"],
            capsize=3,
            **style,
        )
        time_axis.plot(group["rows"], group["training_seconds"], **style)
    for axis, ylabel in ((accuracy_axis, "test accuracy"), (time_axis, "training seconds")):
        axis.set(
            xscale="log",
            yscale="linear" if axis is accuracy_axis else "log",
            xlabel="new-market training rows",
            ylabel=ylabel,
        )
        axis.minorticks_off()  # log-scale minor labels (3×10¹ …) would crowd the row counts
        axis.set_xticks(sorted(table["rows"].unique()), labels=sorted(table["rows"].unique()))
        axis.grid(alpha=0.3)
    accuracy_axis.set_title("Test accuracy (mean ± std over repeats)")
    time_axis.set_title("Training time per fit (median over repeats)")
    accuracy_axis.legend()
    figure.suptitle("Transfer from the phone-price model to a new market")
    figure.tight_layout()
    return table, markdown, figure
