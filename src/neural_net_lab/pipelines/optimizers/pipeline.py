"""optimizers: the MLP trained once per optimizer (one MLflow child run each), the
exponentially weighted average, and optimizer paths over two-variable functions.

The trainings are the blocks under ``optimizers`` in the parameters (``variant_names``). The
split comes from the data_processing and training pipelines' own nodes (the same node
objects, so composing this pipeline with them adds nothing twice): a fresh checkout runs
``kedro run --pipelines optimizers`` on its own.
"""

from kedro.pipeline import Node, Pipeline

from neural_net_lab.pipelines.data_processing.pipeline import create_pipeline as data_processing
from neural_net_lab.pipelines.training.pipeline import create_pipeline as training
from neural_net_lab.variants import variant_names, variant_pipeline

from .nodes import (
    average_temperatures,
    check_variants,
    draw_temperatures,
    formula_pair_paths,
    optimizer_paths,
)
from .plots import loss_curves_plot, plot_formula_pairs, plot_temperatures, plot_trajectories
from .report import comparison_markdown, comparison_table, formula_pair_summary, trajectory_summary

# The blocks of conf/base/parameters_optimizers.yml, for a run without a project around it.
SHIPPED_VARIANTS = ("sgd", "sgd_momentum", "adagrad", "rmsprop", "adam")

# The split as the check node hands it on: the trainings read these, so they wait for it.
_CHECKED = {
    "fit_set": "optimizers_fit_rows",
    "validation_set": "optimizers_validation_rows",
    "test_set": "optimizers_test_rows",
}


def _trainings(names: list[str]) -> Pipeline:
    check = Node(
        check_variants,
        inputs=[
            "fit_set",
            "validation_set",
            "test_set",
            "params:optimizers",
            "params:model",
            "params:training",
            "table_schema",
        ],
        outputs=list(_CHECKED.values()),
        name="check_variants",
        namespace="optimizers",
    )
    variants = [Pipeline(variant_pipeline("optimizers", name), inputs=_CHECKED) for name in names]
    results = [f"optimizers.{name}.result" for name in names]
    report = Pipeline(
        [
            Node(
                comparison_table,
                inputs=["params:optimizers_report", *results],
                outputs="optimizers_comparison",
                name="comparison_table",
                namespace="optimizers",
            ),
            Node(
                comparison_markdown,
                inputs=["optimizers_comparison", "params:optimizers_report", "params:training"],
                outputs="optimizers_comparison_report",
                name="comparison_report",
                namespace="optimizers",
            ),
            Node(
                loss_curves_plot,
                inputs=["params:optimizers_report", *results],
                outputs="optimizers_loss_curves",
                name="loss_curves",
                namespace="optimizers",
            ),
        ],
        tags="report",
    )
    return Pipeline([check, *variants, report], tags="optimizers")


def _demonstrations() -> Pipeline:
    return Pipeline(
        [
            Node(
                draw_temperatures,
                inputs="params:optimizers_ewa",
                outputs="optimizers_temperatures",
                name="draw_temperatures",
            ),
            Node(
                average_temperatures,
                inputs=["optimizers_temperatures", "params:optimizers_ewa"],
                outputs="optimizers_ewa",
                name="average_temperatures",
            ),
            Node(
                plot_temperatures,
                inputs=["optimizers_ewa", "params:optimizers_ewa"],
                outputs="optimizers_ewa_plot",
                name="plot_temperatures",
            ),
            Node(
                optimizer_paths,
                inputs="params:optimizers_trajectories",
                outputs="optimizers_paths",
                name="run_optimizer_paths",
            ),
            Node(
                trajectory_summary,
                inputs=["optimizers_paths", "params:optimizers_trajectories"],
                outputs="optimizers_trajectory_endpoints",
                name="summarize_optimizer_paths",
            ),
            Node(
                plot_trajectories,
                inputs=["optimizers_paths", "params:optimizers_trajectories"],
                outputs="optimizers_trajectories_plot",
                name="plot_optimizer_paths",
            ),
            Node(
                formula_pair_paths,
                inputs=["params:optimizers_formula_pairs", "params:optimizers_trajectories"],
                outputs="optimizers_formula_pair_paths",
                name="run_formula_pairs",
            ),
            Node(
                formula_pair_summary,
                inputs="optimizers_formula_pair_paths",
                outputs="optimizers_formula_pair_gaps",
                name="summarize_formula_pairs",
            ),
            Node(
                plot_formula_pairs,
                inputs=[
                    "optimizers_formula_pair_paths",
                    "params:optimizers_formula_pairs",
                    "params:optimizers_trajectories",
                ],
                outputs="optimizers_formula_pairs_plot",
                name="plot_formula_pairs",
            ),
        ],
        tags=["optimizers", "report"],
    )


def create_pipeline(**kwargs) -> Pipeline:
    split = data_processing() + training().only_nodes("split_validation")
    names = variant_names("optimizers", SHIPPED_VARIANTS)
    return split + _trainings(names) + _demonstrations()
