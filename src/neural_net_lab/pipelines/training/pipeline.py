"""training: carve a validation share, train the MLP, log its curves and the served model.

``variant_pipeline`` namespaces one training-variant template per experiment variant, and
``variant_names`` lists an experiment's variants from the parameters; the optimizers and
regularization experiments are built from them.
"""

from __future__ import annotations

import logging
import os
from functools import partial, update_wrapper
from pathlib import Path

from kedro.framework.project import settings
from kedro.pipeline import Node, Pipeline
from kedro.utils import find_kedro_project

from neural_net_lab.engine.config import VariantParams
from neural_net_lab.pipeline_registry import run_parameters

from .nodes import (
    history_to_mlflow,
    log_served_model,
    split_validation,
    train_model,
    train_variant,
)

logger = logging.getLogger(__name__)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                split_validation,
                inputs=["train_set", "params:columns", "params:training"],
                outputs=["fit_set", "validation_set"],
                name="split_validation",
            ),
            Node(
                train_model,
                inputs=[
                    "fit_set",
                    "validation_set",
                    "params:model",
                    "params:training",
                    "params:columns",
                ],
                outputs=["phone_price_model", "training_history"],
                name="train_model",
            ),
            Node(
                history_to_mlflow,
                inputs="training_history",
                outputs="training_metrics",
                name="log_training_curves",
            ),
            Node(
                log_served_model,
                inputs=[
                    "phone_price_model",
                    "scaler",
                    "phone_prices",
                    "params:model",
                    "params:columns",
                    "params:served_model",
                ],
                outputs="served_model_info",
                name="log_served_model",
            ),
        ],
        tags="training",
    )


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
                    "params:columns",
                ],
                outputs="result",
                name="train_variant",
            )
        ]
    )
    return Pipeline(
        template,
        namespace=f"{experiment}.{variant}",
        inputs={"fit_set", "validation_set", "test_set"},
        parameters={
            "params:model": "params:model",
            "params:training": "params:training",
            "params:columns": "params:columns",
            "params:variant": f"params:{experiment}.{variant}",
        },
        tags=["training", experiment],
    )


def variant_names(
    experiment: str, shipped: tuple[str, ...], project_path: Path | str | None = None
) -> list[str]:
    """The keys of the blocks under ``<experiment>`` in the project's parameters, in file order.

    Kedro builds pipelines after it creates the session's context: during a run the blocks
    come from that context's configuration (``pipeline_registry.run_parameters``, with
    ``--env``, ``--conf-source`` and ``--params``), so no second configuration is loaded.
    Outside a run (``kedro viz``, ``kedro registry``) or with ``project_path``, they are read
    with the project's own config loader: ``conf/base``, then ``$KEDRO_ENV`` or ``conf/local``.
    The project is ``project_path`` or the one around the working directory; without one the
    ``shipped`` names are used. Errors in the blocks are left to the run's check node, which
    names them: raising here would break every other pipeline too.
    """
    parameters = run_parameters() if project_path is None else None
    if parameters is None:
        project = project_path or find_kedro_project(Path.cwd())
        if project is None:
            logger.warning(
                "No Kedro project around %s: %s runs its shipped variants %s",
                Path.cwd(),
                experiment,
                list(shipped),
            )
            return list(shipped)
        loader = settings.CONFIG_LOADER_CLASS(
            conf_source=str(Path(project) / settings.CONF_SOURCE),
            env=os.environ.get("KEDRO_ENV"),
            **settings.CONFIG_LOADER_ARGS,
        )
        parameters = loader["parameters"]
    blocks = parameters.get(experiment)
    return [str(name) for name in blocks] if hasattr(blocks, "keys") else []
