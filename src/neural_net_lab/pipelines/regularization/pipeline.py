"""regularization: the phone-price MLP trained once per regularization variant, compared.

Every block under ``regularization`` in the parameters is one variant: a namespaced instance
of the training template (``variant_pipeline``) that logs one MLflow child run. Adding a
block (a combination is a block with several overrides) adds a variant, no code needed.
"""

from __future__ import annotations

import logging
import os
from pathlib import Path

from kedro.framework.project import settings
from kedro.pipeline import Node, Pipeline
from kedro.utils import find_kedro_project

from neural_net_lab.pipelines.data_processing.pipeline import create_pipeline as data_processing
from neural_net_lab.pipelines.training.pipeline import create_pipeline as training
from neural_net_lab.pipelines.training.pipeline import variant_pipeline

from .nodes import (
    compare_variants,
    dropout_demonstration,
    plan_variants,
    plot_variants,
    report_markdown,
)

logger = logging.getLogger(__name__)

EXPERIMENT = "regularization"
# Used only when no Kedro project is found around the working directory (a packaged run).
SHIPPED_VARIANTS = ("none", "l1", "l2", "dropout", "augmentation", "dropout_l2")


def variant_names(project_path: Path | None = None) -> list[str]:
    """The variant blocks under ``regularization`` in the project's parameters.

    Kedro builds pipelines before it reads configuration, so the blocks are read here with
    the project's own config loader (base, then ``$KEDRO_ENV`` or local). ``--params`` can
    change a variant's settings but cannot add one. Errors in the blocks are left to the run,
    where ``plan_variants`` names them: raising here would break every other pipeline too.
    """
    project = project_path or find_kedro_project(Path.cwd())
    if project is None:
        logger.warning(
            "No Kedro project around %s: regularization runs the shipped variants", Path.cwd()
        )
        return list(SHIPPED_VARIANTS)
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(Path(project) / settings.CONF_SOURCE),
        env=os.environ.get("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )
    blocks = loader["parameters"].get(EXPERIMENT)
    return list(blocks) if hasattr(blocks, "keys") else []


def create_pipeline(**kwargs) -> Pipeline:
    names = variant_names()
    results = [f"{EXPERIMENT}.{name}.result" for name in names]
    # The split comes from the pipelines that make it, so that the experiment runs on a
    # fresh checkout; identical nodes merge when composed with `training` or the default.
    upstream = data_processing() + training().only_nodes("split_validation")
    variants = sum((variant_pipeline(EXPERIMENT, name) for name in names), Pipeline([]))
    report = Pipeline(
        [
            # Reads only parameters, so it runs before any training and stops a bad block early.
            Node(
                plan_variants,
                inputs=["params:model", "params:training", f"params:{EXPERIMENT}"],
                outputs=f"{EXPERIMENT}.plan",
                name="plan_variants",
                namespace=EXPERIMENT,
            ),
            Node(
                dropout_demonstration,
                inputs="params:regularization_dropout_demo",
                outputs=f"{EXPERIMENT}.dropout_demo",
                name="dropout_demonstration",
                namespace=EXPERIMENT,
            ),
            Node(
                compare_variants,
                inputs=[f"{EXPERIMENT}.plan", "params:regularization_report", *results],
                outputs=[f"{EXPERIMENT}.comparison", f"{EXPERIMENT}.metrics"],
                name="compare_variants",
                namespace=EXPERIMENT,
            ),
            Node(
                report_markdown,
                inputs=[
                    f"{EXPERIMENT}.comparison",
                    f"{EXPERIMENT}.dropout_demo",
                    "params:regularization_report",
                ],
                outputs=f"{EXPERIMENT}.report",
                name="report_markdown",
                namespace=EXPERIMENT,
            ),
            Node(
                plot_variants,
                inputs=results,
                outputs=f"{EXPERIMENT}.curves",
                name="plot_variants",
                namespace=EXPERIMENT,
            ),
        ],
        tags=EXPERIMENT,
    )
    return upstream + variants + report
