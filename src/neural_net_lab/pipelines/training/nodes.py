"""Nodes of the training pipeline."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import mlflow
import pandas as pd
from sklearn.model_selection import train_test_split
from torch import nn

from neural_net_lab.engine.fit import (
    fit_classifier,
    merge,
    split_accuracy,
    validate_training_params,
)
from neural_net_lab.engine.model import load_mlp, mlp_from_params
from neural_net_lab.engine.optim import build_optimizer
from neural_net_lab.engine.tracking import child_run, history_as_metrics, log_history_and_metrics
from neural_net_lab.serving import log_phone_price_classifier

logger = logging.getLogger(__name__)


def split_validation(
    train_set: pd.DataFrame, columns: dict[str, Any], training: dict[str, Any]
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carves a stratified validation share off the training split (0 → an empty one)."""
    share = training["validation_share"]
    if isinstance(share, bool) or not isinstance(share, (int, float)) or not 0 <= share < 1:
        raise ValueError(f"training.validation_share must be a number in [0, 1), got {share!r}")
    if share == 0:
        return train_set, train_set.iloc[:0]
    fit_set, validation_set = train_test_split(
        train_set,
        test_size=share,
        stratify=train_set[columns["target"]],
        random_state=training["seed"],
    )
    return fit_set.reset_index(drop=True), validation_set.reset_index(drop=True)


def train_model(
    fit_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    model_params: dict[str, Any],
    training: dict[str, Any],
    columns: dict[str, Any],
) -> tuple[nn.Module, dict[str, list[float]]]:
    """Trains the phone-price MLP; returns it and its per-epoch history."""
    model, history, seconds = fit_classifier(fit_set, validation_set, model_params, training, columns)
    return model, {**history, "seconds": [seconds]}


def history_to_mlflow(history: dict[str, list[float]]) -> dict[str, list[dict[str, float]]]:
    """Per-epoch losses and accuracies as MLflow metric histories (one step per epoch)."""
    return history_as_metrics({k: v for k, v in history.items() if k != "seconds"})


VARIANT_KEYS = ("name", "model", "training")


def check_variant_block(
    block: Any,
    model_params: Mapping[str, Any],
    training: Mapping[str, Any],
    where: str = "variant",
    hint: str = "",
) -> tuple[str, dict[str, Any], dict[str, Any]]:
    """Checks one variant block; returns its name and its model and training settings.

    The overrides are merged over the defaults and checked whole; the network and its optimizer
    are built once, which catches in milliseconds what only their constructors check (Adam's
    betas below 1, nesterov without momentum). Errors name the parameter under ``where``.
    """
    if not isinstance(block, Mapping):
        raise ValueError(
            f"{where} must be a variant block with name, model, training; got {block!r}{hint}"
        )
    unknown = sorted(set(block) - set(VARIANT_KEYS))
    if unknown:
        raise ValueError(
            f"{where}: unknown key(s) {unknown}; a variant has name, model, training{hint}"
        )
    name = block.get("name")
    if not isinstance(name, str) or not name:
        raise ValueError(
            f"{where}.name must be a non-empty string (its MLflow run name); got {name!r}"
        )
    for part in ("model", "training"):
        if block.get(part) is not None and not isinstance(block[part], Mapping):
            raise ValueError(f"{where}.{part} must be a mapping of overrides; got {block[part]!r}")
    model_cfg = merge(model_params, block.get("model"))
    training_cfg = merge(training, block.get("training"))
    validate_training_params(training_cfg, f"{where}.training")  # optimizer name and settings too
    try:
        model = mlp_from_params(model_cfg)
    except ValueError as error:
        raise ValueError(f"{where}.model: {error}") from error
    build_optimizer(model.parameters(), training_cfg["optimizer"], f"{where}.training.optimizer")
    return name, model_cfg, training_cfg


def check_variant_blocks(
    experiment: str,
    variants: Mapping[str, Any],
    model_params: Mapping[str, Any],
    training: Mapping[str, Any],
) -> dict[str, tuple[dict[str, Any], dict[str, Any]]]:
    """Checks every block under ``experiment``; returns run name → (model, training) settings.

    Run before any training, so that a bad block stops the run before the first epoch.
    """
    if not isinstance(variants, Mapping) or not variants:
        raise ValueError(
            f"parameters '{experiment}' must hold one block per variant, e.g. "
            "'<key>: {name: <MLflow run name>, model: {<overrides>}, training: {<overrides>}}'; "
            f"got {variants!r}"
        )
    # Every key under the experiment is a variant: report settings have their own block.
    hint = f" (report settings belong in '{experiment}_report')"
    checked: dict[str, tuple[dict[str, Any], dict[str, Any]]] = {}
    keys: dict[str, str] = {}
    for key, block in variants.items():
        where = f"{experiment}.{key}"
        name, model_cfg, training_cfg = check_variant_block(
            block, model_params, training, where, hint
        )
        if name in keys:
            raise ValueError(
                f"{where}.name: {name!r} is already the name of {experiment}.{keys[name]}"
            )
        keys[name] = key
        checked[name] = (model_cfg, training_cfg)
    return checked


def train_variant(
    fit_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    test_set: pd.DataFrame,
    model_params: dict[str, Any],
    training: dict[str, Any],
    variant: dict[str, Any],
    columns: dict[str, Any],
    *,
    where: str = "variant",
) -> dict[str, Any]:
    """Trains one variant of an experiment (defaults + the variant's overrides) as a child run.

    ``variant`` holds ``name`` and optional ``model`` and ``training`` overrides; ``where`` is
    its parameter block, named by errors. Returns its settings, history and final metrics for
    the experiment's report; test accuracy is reported, never used to choose.
    """
    name, model_cfg, training_cfg = check_variant_block(variant, model_params, training, where)
    with child_run(name, {"model": model_cfg, "training": training_cfg}) as run_id:
        model, history, seconds = fit_classifier(
            fit_set, validation_set, model_cfg, training_cfg, columns,
            description=name, where=f"{where}.training",
        )  # fmt: skip
        metrics = {
            "final_train_loss": history["train_loss"][-1],
            "train_accuracy": split_accuracy(model, fit_set, columns),
            "test_accuracy": split_accuracy(model, test_set, columns),
            "training_seconds": seconds,
        }
        if history.get("val_accuracy"):
            metrics["val_accuracy"] = history["val_accuracy"][-1]
            metrics["best_val_accuracy"] = max(history["val_accuracy"])
        log_history_and_metrics(run_id, history, metrics)
    return {
        "name": name,
        "model": model_cfg,
        "training": training_cfg,
        "history": history,
        "metrics": metrics,
        "mlflow_run_id": run_id,
        "state_dict": {k: v.detach().clone() for k, v in model.state_dict().items()},
    }


def log_served_model(
    model_state: dict[str, Any],
    scaler: Mapping[str, Any],
    raw_phones: pd.DataFrame,
    model_params: dict[str, Any],
    columns: dict[str, Any],
    served_model: dict[str, Any],
) -> dict[str, Any]:
    """Logs scaler + network + labels as one MLflow model and registers it; skipped without a run."""
    if mlflow.active_run() is None:
        logger.info("No active MLflow run: the served model is not logged")
        return {"logged": False}
    rows = served_model["example_rows"]
    if isinstance(rows, bool) or not isinstance(rows, int) or rows < 1:
        raise ValueError(f"served_model.example_rows must be a positive integer, got {rows!r}")
    info = log_phone_price_classifier(
        scaler,
        load_mlp(model_state, model_params),
        raw_phones.head(rows),
        columns,
        name=served_model["name"],
        registered_model_name=served_model["registered_model_name"],
    )
    return {
        "logged": True,
        "run_id": info.run_id,
        "model_uri": info.model_uri,
        "registered_model_name": served_model["registered_model_name"],
        "registered_model_version": info.registered_model_version,
    }
