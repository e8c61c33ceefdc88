"""regularization: the MLP trained once per regularization variant, compared.

Every block under ``regularization`` in the parameters is one variant (``variant_names``): a
namespaced instance of the training template (``variant_pipeline``) that logs one MLflow child
run. Adding a block (a combination is a block with several overrides) adds a variant, no code
needed.
"""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from neural_net_lab.pipelines.data_processing.pipeline import create_pipeline as data_processing
from neural_net_lab.pipelines.training.pipeline import create_pipeline as training
from neural_net_lab.variants import variant_names, variant_pipeline

from .nodes import (
    compare_variants,
    dropout_demonstration,
    plan_variants,
    plot_variants,
    report_markdown,
)

EXPERIMENT = "regularization"
# The blocks of conf/base/parameters_regularization.yml, for a run without a project around it.
SHIPPED_VARIANTS = ("none", "l1", "l2", "dropout", "augmentation", "dropout_l2")


def create_pipeline(**kwargs) -> Pipeline:
    names = variant_names(EXPERIMENT, SHIPPED_VARIANTS)
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
