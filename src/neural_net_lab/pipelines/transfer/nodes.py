"""Nodes of the transfer pipeline: adapt the trained phone-price network to a new market."""

from __future__ import annotations

import time
from collections.abc import Mapping
from numbers import Real
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from matplotlib import pyplot as plt
from mlflow.entities import Metric
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from torch import nn

from neural_net_lab.engine.augmentation import build_augmentation
from neural_net_lab.engine.data import to_tensors
from neural_net_lab.engine.fit import merge, split_accuracy, validate_training_params
from neural_net_lab.engine.model import load_mlp, mlp_from_params
from neural_net_lab.engine.optim import build_optimizer
from neural_net_lab.engine.seeding import seed_everything
from neural_net_lab.engine.tracking import child_run, log_history_and_metrics
from neural_net_lab.engine.training import train
from neural_net_lab.pipelines.data_processing.nodes import validate_phone_prices
from neural_net_lab.reporting import markdown_table

# One pipeline instance per name, each with its block transfer.strategies.<name>. Kedro builds
# pipelines before it reads parameters, so a new strategy needs its name here too.
STRATEGIES = ("freeze", "finetune", "scratch")
STRATEGY_KEYS = {"name", "init", "freeze", "hidden_lr_factor"}


def target_columns(columns: Mapping[str, Any], target: Mapping[str, Any]) -> dict[str, Any]:
    """The shared column description with the new market's classes."""
    return {**columns, "classes": list(target["classes"])}


def validate_new_market(
    raw: pd.DataFrame, columns: dict[str, Any], target: dict[str, Any]
) -> pd.DataFrame:
    """Validates the new market's table with the main table's rules and its own classes."""
    return validate_phone_prices(raw, target_columns(columns, target), target)


def prepare_source_model(
    state: dict[str, torch.Tensor], model_params: dict[str, Any], columns: dict[str, Any]
) -> dict[str, torch.Tensor]:
    """Checks the saved network against ``model`` and the features; returns its hidden layers.

    The old head (one logit per source class) is dropped: every strategy gets a new head.
    """
    source = load_mlp(state, model_params)  # names any architecture mismatch
    width = next(m for m in source if isinstance(m, nn.Linear)).in_features
    n_features = len(columns["features"])
    if width != n_features:
        raise ValueError(
            f"the source model takes {width} input features (model.input_dim) but the new "
            f"market has {n_features} feature columns (columns.features): transfer needs the "
            "same features, in the same order, as the model was trained on"
        )
    head = f"{len(source) - 1}."
    return {k: v.detach().clone() for k, v in source.state_dict().items() if not k.startswith(head)}


def draw_learning_curve(
    train_set: pd.DataFrame, columns: dict[str, Any], curve: dict[str, Any]
) -> list[dict[str, Any]]:
    """Nested stratified subsets of the training rows: one per curve size and repeat.

    Each repeat shrinks the full training split step by step, so the 25 rows are part of the
    50, which are part of the 100: a point differs from the next only by the added rows.
    The full split is always the last point.
    """
    sizes, repeats, seed = curve.get("sizes"), curve.get("repeats"), curve.get("seed")
    n_rows, labels = len(train_set), train_set[columns["target"]].to_numpy()
    n_classes = len(np.unique(labels))
    if not isinstance(sizes, list) or not all(
        isinstance(s, int) and not isinstance(s, bool) and n_classes <= s <= n_rows for s in sizes
    ):
        raise ValueError(
            f"transfer.learning_curve.sizes must be a list of row counts between {n_classes} "
            f"(one row per class) and {n_rows} (the new market's training rows), got {sizes!r}"
        )
    if isinstance(repeats, bool) or not isinstance(repeats, int) or repeats < 1:
        raise ValueError(
            f"transfer.learning_curve.repeats must be a positive integer, got {repeats!r}"
        )
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ValueError(
            f"transfer.learning_curve.seed must be a non-negative integer, got {seed!r}"
        )
    points = []
    for repeat in range(repeats):
        index = np.arange(n_rows)
        points.append({"repeat": repeat, "rows": n_rows, "index": index.tolist()})
        for size in sorted(set(sizes) - {n_rows}, reverse=True):
            index, _ = train_test_split(
                index, train_size=size, stratify=labels[index], random_state=seed + repeat
            )
            points.append({"repeat": repeat, "rows": size, "index": sorted(index.tolist())})
    return sorted(points, key=lambda p: (p["rows"], p["repeat"]))


def _validate_strategy(strategy: Mapping[str, Any], where: str) -> None:
    unknown = sorted(set(strategy) - STRATEGY_KEYS)
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown}; expected some of {sorted(STRATEGY_KEYS)}"
        )
    if not isinstance(strategy.get("name"), str) or not strategy["name"]:
        raise ValueError(f"{where}.name must be a non-empty string (the MLflow child run's name)")
    if strategy.get("init") not in {"pretrained", "random"}:
        raise ValueError(
            f"{where}.init must be 'pretrained' or 'random', got {strategy.get('init')!r}"
        )
    if not isinstance(strategy.get("freeze", False), bool):
        raise ValueError(f"{where}.freeze must be true or false, got {strategy.get('freeze')!r}")
    factor = strategy.get("hidden_lr_factor", 1.0)
    if isinstance(factor, bool) or not isinstance(factor, Real) or factor <= 0:
        raise ValueError(f"{where}.hidden_lr_factor must be a positive number, got {factor!r}")


def build_target_network(
    pretrained: Mapping[str, torch.Tensor],
    model_params: Mapping[str, Any],
    n_classes: int,
    strategy: Mapping[str, Any],
) -> nn.Sequential:
    """The source architecture with a new head of ``n_classes`` logits.

    With ``init: pretrained`` the hidden layers start from the source weights, and with
    ``freeze: true`` they keep them (``requires_grad=False``); the head always starts random.
    """
    model = mlp_from_params({**model_params, "n_classes": n_classes})
    head = len(model) - 1
    if strategy["init"] == "pretrained":
        # Strict: a hidden-layer key or shape that does not fit is named by PyTorch.
        model.load_state_dict({**model.state_dict(), **pretrained})
    if strategy.get("freeze", False):
        for name, parameter in model.named_parameters():
            if not name.startswith(f"{head}."):
                parameter.requires_grad_(False)
    return model


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
    model_params: Mapping[str, Any],
    training: Mapping[str, Any],
    strategy: Mapping[str, Any],
    columns: Mapping[str, Any],
    seed: int,
) -> tuple[nn.Sequential, dict[str, list[float]], float]:
    """Builds the strategy's network and trains it on ``subset``: model, history, seconds."""
    generator = seed_everything(seed)  # before building: the new head's init draws from it
    model = build_target_network(pretrained, model_params, len(columns["classes"]), strategy)
    optimizer = build_optimizer(
        parameter_groups(model, training["optimizer"]["lr"], strategy.get("hidden_lr_factor", 1.0)),
        training["optimizer"],
        "transfer.training.optimizer",
    )
    features, labels = to_tensors(subset, columns["features"], columns["target"])
    started = time.perf_counter()
    history = train(
        model, optimizer, features, labels,
        epochs=training["epochs"], batch_size=training["batch_size"], generator=generator,
        l1_lambda=training.get("l1_lambda", 0.0),
        augmentation=build_augmentation(
            training.get("augmentation"), "transfer.training.augmentation"
        ),
        gradients=training.get("gradients", "auto"),
        threads=training.get("threads", 1), progress=training.get("progress", True),
        description=f"{strategy['name']} on {len(subset)} rows",
    )  # fmt: skip
    return model, history, time.perf_counter() - started


def run_strategy(
    train_set: pd.DataFrame,
    test_set: pd.DataFrame,
    subsets: list[dict[str, Any]],
    pretrained: dict[str, torch.Tensor],
    model_params: dict[str, Any],
    training: dict[str, Any],
    transfer: dict[str, Any],
    strategy: dict[str, Any],
    columns: dict[str, Any],
) -> tuple[nn.Module, dict[str, Any]]:
    """Trains one strategy at every learning-curve point and logs it as an MLflow child run.

    Returns the network trained on all training rows (first repeat) and the curve points.
    Every strategy sees the same subsets, seeds and budget; the test rows only score.
    """
    where = f"transfer.strategies.{strategy.get('name', '?')}"
    _validate_strategy(strategy, where)
    blocks = sorted(transfer.get("strategies", {}))
    if blocks != sorted(STRATEGIES):
        raise ValueError(
            f"transfer.strategies has the blocks {blocks} but the pipeline runs "
            f"{list(STRATEGIES)}: "
            "list every strategy's name in STRATEGIES in pipelines/transfer/nodes.py"
        )
    training_cfg = merge(training, transfer.get("training"))
    validate_training_params(training_cfg, "transfer.training")
    if "lr" not in training_cfg["optimizer"]:
        raise ValueError(
            "transfer.training.optimizer.lr must be set: the parameter groups scale it"
        )
    columns = target_columns(columns, transfer["target"])
    params = {
        "strategy": strategy,
        # validation_share is not used: all the few rows train, the test split scores.
        "training": {k: v for k, v in training_cfg.items() if k != "validation_share"},
        "model": {**model_params, "n_classes": len(columns["classes"])},
        "learning_curve": transfer["learning_curve"],
    }
    with child_run(strategy["name"], params) as run_id:
        points, final = [], None
        for point in subsets:
            subset = train_set.iloc[point["index"]]
            model, history, seconds = fit_strategy(
                subset, pretrained, model_params=model_params, training=training_cfg,
                strategy=strategy, columns=columns, seed=training_cfg["seed"] + point["repeat"],
            )  # fmt: skip
            points.append({
                "strategy": strategy["name"], "rows": point["rows"], "repeat": point["repeat"],
                "train_accuracy": split_accuracy(model, subset, columns),
                "test_accuracy": split_accuracy(model, test_set, columns),
                "training_seconds": seconds,
            })  # fmt: skip
            if point["rows"] == len(train_set) and point["repeat"] == 0:
                final = (model, history, points[-1]["test_accuracy"])
        model, history, final_accuracy = final
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
            mlflow.MlflowClient().log_batch(run_id, metrics=[
                Metric(f"curve_{key}", float(row[key]), now, int(rows))
                for rows, row in curve.iterrows() for key in ("test_accuracy", "training_seconds")
            ])  # fmt: skip
    return model, {"name": strategy["name"], "strategy": strategy, "points": points,
                   "history": history, "metrics": metrics, "mlflow_run_id": run_id}  # fmt: skip


def score_linear_baseline(
    train_set: pd.DataFrame,
    test_set: pd.DataFrame,
    subsets: list[dict[str, Any]],
    columns: dict[str, Any],
    baseline: dict[str, Any],
) -> dict[str, Any]:
    """LogisticRegression on the same curve points: what a linear model gets from the rows alone."""
    features, target = columns["features"], columns["target"]
    points = []
    for point in subsets:
        subset = train_set.iloc[point["index"]]
        started = time.perf_counter()
        model = LogisticRegression(**baseline).fit(subset[features], subset[target])
        seconds = time.perf_counter() - started
        points.append({
            "strategy": "logistic_regression", "rows": point["rows"], "repeat": point["repeat"],
            "train_accuracy": float(model.score(subset[features], subset[target])),
            "test_accuracy": float(model.score(test_set[features], test_set[target])),
            "training_seconds": seconds,
        })  # fmt: skip
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
        )  # fmt: skip
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
        accuracy_axis.errorbar(group["rows"], group["test_accuracy"], yerr=group["test_accuracy_std"],
                               capsize=3, **style)  # fmt: skip
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
