"""Nodes of the transfer pipeline: adapt the trained phone-price network to a new market."""

from __future__ import annotations

import time
from collections.abc import Mapping
from typing import Any

import numpy as np
import pandas as pd
import torch
from matplotlib import pyplot as plt
from mlflow.entities import Metric
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from torch import nn

from neural_net_lab.engine.config import ColumnsParams, ModelParams, TrainingParams
from neural_net_lab.engine.data import to_tensors
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.engine.fit import split_accuracy
from neural_net_lab.engine.model import load_mlp, mlp_from_params
from neural_net_lab.engine.overrides import with_overrides
from neural_net_lab.engine.seeding import seed_everything
from neural_net_lab.engine.tracking import child_run, log_batch, log_history_and_metrics
from neural_net_lab.engine.training import start_training
from neural_net_lab.phone_table import split_data, validate_phone_prices
from neural_net_lab.reporting import markdown_table

from .params import StrategyParams, TransferParams


def target_columns(columns: ColumnsParams, transfer: TransferParams) -> ColumnsParams:
    """The shared column description with the new market's classes."""
    return columns.model_copy(update={"classes": transfer.target.classes})


def validate_new_market(
    raw: pd.DataFrame, columns: ColumnsParams, transfer: TransferParams
) -> pd.DataFrame:
    """Validates the new market's table with the main table's rules and its own classes."""
    return validate_phone_prices(raw, target_columns(columns, transfer), transfer.target)


def split_new_market(
    validated: pd.DataFrame, columns: ColumnsParams, transfer: TransferParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Stratified train/test split of the new market with its own share and random state."""
    return split_data(validated, columns, transfer.target)


def prepare_source_model(
    state: dict[str, torch.Tensor], model: ModelParams, columns: ColumnsParams
) -> dict[str, torch.Tensor]:
    """Checks the saved network against ``model`` and the features; returns its hidden layers.

    The old head (one logit per source class) is dropped: every strategy gets a new head.
    """
    source = load_mlp(state, model)  # names any architecture mismatch
    width = next(m for m in source if isinstance(m, nn.Linear)).in_features
    n_features = len(columns.features)
    if width != n_features:
        raise ValueError(
            f"the source model takes {width} input features (model.input_dim) but the new "
            f"market has {n_features} feature columns (columns.features): transfer needs the "
            "same features, in the same order, as the model was trained on"
        )
    head = f"{len(source) - 1}."
    return {k: v.detach().clone() for k, v in source.state_dict().items() if not k.startswith(head)}


def draw_learning_curve(
    train_set: pd.DataFrame, columns: ColumnsParams, transfer: TransferParams
) -> list[dict[str, Any]]:
    """Nested stratified subsets of the training rows: one per curve size and repeat.

    Each repeat shrinks the full training split step by step, so the 25 rows are part of the
    50, which are part of the 100: a point differs from the next only by the added rows.
    The full split is always the last point.
    """
    curve = transfer.learning_curve
    n_rows, labels = len(train_set), train_set[columns.target].to_numpy()
    n_classes = len(np.unique(labels))
    if not all(n_classes <= size <= n_rows for size in curve.sizes):
        raise ParameterError(
            f"transfer.learning_curve.sizes must be row counts between {n_classes} "
            f"(one row per class) and {n_rows} (the new market's training rows), "
            f"got {curve.sizes}"
        )
    points = []
    for repeat in range(curve.repeats):
        index = np.arange(n_rows)
        points.append({"repeat": repeat, "rows": n_rows, "index": index.tolist()})
        for size in sorted(set(curve.sizes) - {n_rows}, reverse=True):
            index, _ = train_test_split(
                index, train_size=size, stratify=labels[index], random_state=curve.seed + repeat
            )
            points.append({"repeat": repeat, "rows": size, "index": sorted(index.tolist())})
    return sorted(points, key=lambda p: (p["rows"], p["repeat"]))


def build_target_network(
    pretrained: Mapping[str, torch.Tensor],
    model: ModelParams,
    n_classes: int,
    strategy: StrategyParams,
) -> nn.Sequential:
    """The source architecture with a new head of ``n_classes`` logits.

    With ``init: pretrained`` the hidden layers start from the source weights, and with
    ``freeze: true`` they keep them (``requires_grad=False``); the head always starts random.
    """
    network = mlp_from_params(model.model_copy(update={"n_classes": n_classes}))
    head = len(network) - 1
    if strategy.init == "pretrained":
        # Strict: a hidden-layer key or shape that does not fit is named by PyTorch.
        network.load_state_dict({**network.state_dict(), **pretrained})
    if strategy.freeze:
        for name, parameter in network.named_parameters():
            if not name.startswith(f"{head}."):
                parameter.requires_grad_(False)
    return network


def parameter_groups(
    model: nn.Sequential, lr: float, hidden_lr_factor: float
) -> list[dict[str, Any]]:
    """Optimizer groups: the head at ``lr``, trainable hidden layers at ``lr × factor``.

    Frozen parameters are left out, so the optimizer holds no state for them.
    """
    head = f"{len(model) - 1}."
    hidden = [p for n, p in model.named_parameters() if not n.startswith(head) and p.requires_grad]
    groups = [{"params": [p for n, p in model.named_parameters() if n.startswith(head)], "lr": lr}]
    if hidden:
        groups.insert(0, {"params": hidden, "lr": lr * hidden_lr_factor})
    return groups


def fit_strategy(
    subset: pd.DataFrame,
    pretrained: Mapping[str, torch.Tensor],
    *,
    model: ModelParams,
    training: TrainingParams,
    strategy: StrategyParams,
    columns: ColumnsParams,
    seed: int,
) -> tuple[nn.Sequential, dict[str, list[float]], float]:
    """Builds the strategy's network and trains it on ``subset``: model, history, seconds."""
    generator = seed_everything(seed)  # before building: the new head's init draws from it
    network = build_target_network(pretrained, model, len(columns.classes), strategy)
    groups = parameter_groups(network, training.optimizer.lr, strategy.hidden_lr_factor)
    features, labels = to_tensors(subset, columns.features, columns.target)
    started = time.perf_counter()
    description = f"{strategy.name} on {len(subset)} rows"
    epochs = start_training(
        network, groups, features, labels, training, generator=generator, description=description
    )
    history = epochs.history(training.threads, training.progress)
    return network, history, time.perf_counter() - started


def run_strategy(  # noqa: PLR0917 - Kedro passes a node's inputs by position
    train_set: pd.DataFrame,
    test_set: pd.DataFrame,
    subsets: list[dict[str, Any]],
    pretrained: dict[str, torch.Tensor],
    model: ModelParams,
    training: TrainingParams,
    transfer: TransferParams,
    columns: ColumnsParams,
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
    columns = target_columns(columns, transfer)
    target_model = model.model_copy(update={"n_classes": len(columns.classes)})
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
                model=model,
                training=training_cfg,
                strategy=settings,
                columns=columns,
                seed=training_cfg.seed + point["repeat"],
            )
            points.append(
                {
                    "strategy": settings.name,
                    "rows": point["rows"],
                    "repeat": point["repeat"],
                    "train_accuracy": split_accuracy(network, subset, columns),
                    "test_accuracy": split_accuracy(network, test_set, columns),
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
        if run_id is not None:
            # The curve as histories with step = training rows: sibling runs overlay in the UI.
            now = int(time.time() * 1000)
            curve_metrics = [
                Metric(f"curve_{key}", float(row[key]), now, int(rows))
                for rows, row in curve.iterrows()
                for key in ("test_accuracy", "training_seconds")
            ]
            log_batch(run_id, metrics=curve_metrics)
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
    columns: ColumnsParams,
    transfer: TransferParams,
) -> dict[str, Any]:
    """LogisticRegression on the same curve points: what a linear model gets from the rows alone."""
    features, target = columns.features, columns.target
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
