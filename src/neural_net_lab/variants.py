"""Experiment variants: the default ``model`` and ``training`` blocks with one variant's
overrides merged over them, trained as one MLflow child run each.

The optimizers and regularization experiments are built from this: ``variant_names`` lists an
experiment's variants from the parameters, ``variant_pipeline`` namespaces one training
node per variant, ``check_variant_blocks`` refuses bad blocks before any training. What a
variant is trained with comes from the engine; what it reports is the experiment's business.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from functools import partial, update_wrapper
from pathlib import Path
from typing import Any

import pandas as pd
from kedro.pipeline import Node, Pipeline

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.engine.fit import fit_classifier, split_accuracy
from neural_net_lab.engine.overrides import VariantParams, with_overrides
from neural_net_lab.engine.tracking import child_run, log_history_and_metrics
from neural_net_lab.run_config import parameters as run_parameters
from neural_net_lab.table import TableSchema

logger = logging.getLogger(__name__)


def check_variant_block(
    variant: VariantParams,
    model: ModelParams,
    training: TrainingParams,
    where: str = "variant",
) -> tuple[str, ModelParams, TrainingParams]:
    """One variant's name, and its model and training blocks: the defaults with its
    overrides merged over them.

    Each part was typed before the run; what only the merge can show (an optimizer setting
    that the default optimizer does not take) is checked here, naming ``<where>.training``.
    """
    return (
        variant.name,
        with_overrides(model, variant.model, f"{where}.model"),
        with_overrides(training, variant.training, f"{where}.training"),
    )


def typed_variants(experiment: str, variants: Any) -> dict[str, VariantParams]:
    """An experiment's variant blocks as the parameters hold them, each typed and named
    ``<experiment>.<key>`` in its errors (Kedro types a node input only when it is one block).
    Blocks typed already are kept as they are."""
    if not isinstance(variants, Mapping) or not variants:
        raise ParameterError(
            f"parameters '{experiment}' must hold one block per variant, e.g. "
            "'<key>: {name: <MLflow run name>, model: {<overrides>}, training: {<overrides>}}'; "
            f"got {variants!r}"
        )
    return {
        key: VariantParams.at(f"{experiment}.{key}").model_validate(block)
        for key, block in variants.items()
    }


def check_variant_blocks(
    experiment: str,
    variants: Mapping[str, Any],
    model: ModelParams,
    training: TrainingParams,
) -> dict[str, tuple[ModelParams, TrainingParams]]:
    """Checks every block under ``experiment``; returns run name → (model, training) blocks.

    Run before any training, so that a bad merge stops the run before the first epoch.
    """
    checked: dict[str, tuple[ModelParams, TrainingParams]] = {}
    keys: dict[str, str] = {}
    for key, variant in typed_variants(experiment, variants).items():
        where = f"{experiment}.{key}"
        name, model_cfg, training_cfg = check_variant_block(variant, model, training, where)
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
    schema: TableSchema,
    *,
    where: str = "variant",
) -> dict[str, Any]:
    """Trains one variant of an experiment (defaults + the variant's overrides, the widths of
    the table) as a child run.

    ``variant`` holds ``name`` and optional ``model`` and ``training`` overrides; ``where`` is
    its parameter block, named by errors. Returns its settings, history and final metrics for
    the experiment's report; test accuracy is reported, never used to choose.
    """
    name, model_cfg, training_cfg = check_variant_block(variant, model, training, where)
    model_cfg = schema.network(model_cfg, f"{where}.model")
    settings = {"model": model_cfg.dump(), "training": training_cfg.dump()}
    with child_run(name, settings) as run_id:
        network, history, seconds = fit_classifier(
            fit_set, validation_set, model_cfg, training_cfg, schema, description=name
        )
        metrics = {
            "final_train_loss": history["train_loss"][-1],
            "train_accuracy": split_accuracy(network, fit_set, schema),
            "test_accuracy": split_accuracy(network, test_set, schema),
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


def variant_pipeline(experiment: str, variant: str) -> Pipeline:
    """One variant of an experiment: the training template under ``<experiment>.<variant>``.

    It reads the shared split and the default ``model``/``training`` parameters, plus its own
    block ``<experiment>.<variant>`` (a ``name`` for its MLflow child run and ``model`` /
    ``training`` overrides), and outputs ``<experiment>.<variant>.result``.
    """
    # Errors name the variant's parameter block, which the node's inputs do not tell it; the
    # wrapper keeps train_variant's name and source for logs and kedro viz.
    train = update_wrapper(partial(train_variant, where=f"{experiment}.{variant}"), train_variant)
    # Kedro validates the block as this type before any node runs; its errors name the block.
    train.__annotations__ = {
        **train_variant.__annotations__,
        "variant": VariantParams.at(f"{experiment}.{variant}"),
    }
    template = Pipeline(
        [
            Node(
                train,
                inputs=[
                    "fit_set",
                    "validation_set",
                    "test_set",
                    "params:model",
                    "params:training",
                    "params:variant",
                    "table_schema",
                ],
                outputs="result",
                name="train_variant",
            )
        ]
    )
    return Pipeline(
        template,
        namespace=f"{experiment}.{variant}",
        inputs={"fit_set", "validation_set", "test_set", "table_schema"},
        parameters={
            "params:model": "params:model",
            "params:training": "params:training",
            "params:variant": f"params:{experiment}.{variant}",
        },
        tags=["training", experiment],
    )


def variant_names(
    experiment: str, shipped: tuple[str, ...], project_path: Path | str | None = None
) -> list[str]:
    """The keys of the blocks under ``<experiment>`` in the project's parameters, in file order.

    The parameters are the running session's, or the project's files outside a run
    (``run_config.parameters``); without a project the ``shipped`` names are
    used. Errors in the blocks are left to the run's check node, which
    names them: raising here would break every other pipeline too.
    """
    parameters = run_parameters(project_path)
    if parameters is None:
        logger.warning(
            "No Kedro project around %s: %s runs its shipped variants %s",
            Path.cwd(),
            experiment,
            list(shipped),
        )
        return list(shipped)
    blocks = parameters.get(experiment)
    return [str(name) for name in blocks] if hasattr(blocks, "keys") else []
