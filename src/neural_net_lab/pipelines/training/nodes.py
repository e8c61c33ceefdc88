"""Nodes of the training pipeline."""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any, ClassVar

import mlflow
import pandas as pd
from pydantic import Field
from sklearn.model_selection import train_test_split
from torch import nn

from neural_net_lab.engine.config import (
    Block,
    ColumnsParams,
    ModelParams,
    ParameterError,
    PositiveInt,
    TrainingParams,
    VariantParams,
    as_params,
    with_overrides,
)
from neural_net_lab.engine.fit import fit_classifier, split_accuracy
from neural_net_lab.engine.tracking import child_run, history_as_metrics, log_history_and_metrics
from neural_net_lab.serving import log_phone_price_classifier, scaled_network

logger = logging.getLogger(__name__)


def split_validation(
    train_set: pd.DataFrame, columns: ColumnsParams, training: TrainingParams
) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Carves a stratified validation share off the training split (0 → an empty one)."""
    if training.validation_share == 0:
        return train_set, train_set.iloc[:0]
    fit_set, validation_set = train_test_split(
        train_set,
        test_size=training.validation_share,
        stratify=train_set[columns.target],
        random_state=training.seed,
    )
    return fit_set.reset_index(drop=True), validation_set.reset_index(drop=True)


def train_model(
    fit_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    model: ModelParams,
    training: TrainingParams,
    columns: ColumnsParams,
) -> tuple[nn.Module, dict[str, list[float]]]:
    """Trains the phone-price MLP; returns it and its per-epoch history."""
    network, history, seconds = fit_classifier(fit_set, validation_set, model, training, columns)
    return network, {**history, "seconds": [seconds]}


def history_to_mlflow(history: dict[str, list[float]]) -> dict[str, list[dict[str, float]]]:
    """Per-epoch losses and accuracies as MLflow metric histories (one step per epoch)."""
    return history_as_metrics({k: v for k, v in history.items() if k != "seconds"})


def check_variant_block(
    variant: VariantParams | Mapping[str, Any],
    model: ModelParams,
    training: TrainingParams,
    where: str = "variant",
) -> tuple[str, ModelParams, TrainingParams]:
    """One variant's name, and its model and training blocks: the defaults with its
    overrides merged over them.

    Each part was typed before the run; what only the merge can show (an optimizer setting
    that the default optimizer does not take) is checked here, naming ``<where>.training``.
    """
    variant = as_params(VariantParams.at(where), variant)
    return (
        variant.name,
        with_overrides(model, variant.model, f"{where}.model"),
        with_overrides(training, variant.training, f"{where}.training"),
    )


def check_variant_blocks(
    experiment: str,
    variants: Mapping[str, VariantParams | Mapping[str, Any]],
    model: ModelParams,
    training: TrainingParams,
) -> dict[str, tuple[ModelParams, TrainingParams]]:
    """Checks every block under ``experiment``; returns run name → (model, training) blocks.

    Run before any training, so that a bad merge stops the run before the first epoch.
    """
    if not isinstance(variants, Mapping) or not variants:
        raise ParameterError(
            f"parameters '{experiment}' must hold one block per variant, e.g. "
            "'<key>: {name: <MLflow run name>, model: {<overrides>}, training: {<overrides>}}'; "
            f"got {variants!r}"
        )
    checked: dict[str, tuple[ModelParams, TrainingParams]] = {}
    keys: dict[str, str] = {}
    for key, block in variants.items():
        where = f"{experiment}.{key}"
        name, model_cfg, training_cfg = check_variant_block(block, model, training, where)
        if name in keys:
            raise ParameterError(
                f"{where}.name: {name!r} is already the name of {experiment}.{keys[name]}"
            )
        keys[name] = key
        checked[name] = (model_cfg, training_cfg)
    return checked


def train_variant(  # noqa: PLR0917 - Kedro passes a node's inputs by position
    fit_set: pd.DataFrame,
    validation_set: pd.DataFrame,
    test_set: pd.DataFrame,
    model: ModelParams,
    training: TrainingParams,
    variant: VariantParams,
    columns: ColumnsParams,
    *,
    where: str = "variant",
) -> dict[str, Any]:
    """Trains one variant of an experiment (defaults + the variant's overrides) as a child run.

    ``variant`` holds ``name`` and optional ``model`` and ``training`` overrides; ``where`` is
    its parameter block, named by errors. Returns its settings, history and final metrics for
    the experiment's report; test accuracy is reported, never used to choose.
    """
    name, model_cfg, training_cfg = check_variant_block(variant, model, training, where)
    settings = {"model": model_cfg.dump(), "training": training_cfg.dump()}
    with child_run(name, settings) as run_id:
        network, history, seconds = fit_classifier(
            fit_set, validation_set, model_cfg, training_cfg, columns, description=name
        )
        metrics = {
            "final_train_loss": history["train_loss"][-1],
            "train_accuracy": split_accuracy(network, fit_set, columns),
            "test_accuracy": split_accuracy(network, test_set, columns),
            "training_seconds": seconds,
        }
        if history.get("val_accuracy"):
            metrics["val_accuracy"] = history["val_accuracy"][-1]
            metrics["best_val_accuracy"] = max(history["val_accuracy"])
        log_history_and_metrics(run_id, history, metrics)
    return {
        "name": name,
        **settings,
        "history": history,
        "metrics": metrics,
        "mlflow_run_id": run_id,
        "state_dict": {k: v.detach().clone() for k, v in network.state_dict().items()},
    }


class ServedModelParams(Block):
    """How the trained network is logged as one MLflow model (``served_model``)."""

    block_path: ClassVar[str] = "served_model"

    name: str = Field(min_length=1)
    registered_model_name: str | None  # None: log, do not register
    example_rows: PositiveInt


def log_served_model(  # noqa: PLR0917 - Kedro passes a node's inputs by position
    model_state: dict[str, Any],
    scaler: Mapping[str, Any],
    raw_phones: pd.DataFrame,
    model: ModelParams,
    columns: ColumnsParams,
    served_model: ServedModelParams,
) -> dict[str, Any]:
    """Logs scaler + network + labels as one MLflow model and registers it; skipped without a run."""
    if mlflow.active_run() is None:
        logger.info("No active MLflow run: the served model is not logged")
        return {"logged": False}
    info = log_phone_price_classifier(
        scaled_network(scaler, model_state, model, columns),
        raw_phones.head(served_model.example_rows),
        columns,
        name=served_model.name,
        registered_model_name=served_model.registered_model_name,
    )
    return {
        "logged": True,
        "run_id": info.run_id,
        "model_uri": info.model_uri,
        "registered_model_name": served_model.registered_model_name,
        "registered_model_version": info.registered_model_version,
    }
