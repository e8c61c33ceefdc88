"""evaluation: test metrics, per-class report, confusion matrix, curves, a linear baseline
and the network against it on the same rows (Wilson intervals, exact McNemar), permutation
feature importance and a reliability diagram."""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    calibration_report,
    combine_metrics,
    compare_with_baseline,
    evaluated_network,
    importance_report,
    plot_training_curves,
    predict_test_set,
    score_logistic_baseline,
    score_network,
)


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                predict_test_set,
                inputs=["phone_price_model", "test_set", "params:model", "table_schema"],
                outputs="test_predictions",
                name="predict_test_set",
            ),
            Node(
                score_network,
                inputs=["test_predictions", "test_set", "table_schema"],
                outputs=["network_metrics", "classification_report", "confusion_matrix_plot"],
                name="score_network",
            ),
            Node(
                score_logistic_baseline,
                inputs=["fit_set", "test_set", "table_schema", "params:evaluation"],
                outputs=["baseline_metrics", "baseline_predictions"],
                name="score_logistic_baseline",
            ),
            Node(
                compare_with_baseline,
                inputs=["test_predictions", "baseline_predictions", "test_set", "table_schema"],
                outputs="baseline_comparison",
                name="compare_with_baseline",
            ),
            Node(
                evaluated_network,
                inputs=["phone_price_model", "scaler", "params:model", "table_schema"],
                outputs="evaluated_network",
                name="evaluated_network",
            ),
            Node(
                combine_metrics,
                inputs=[
                    "network_metrics",
                    "baseline_metrics",
                    "baseline_comparison",
                    "training_history",
                    "calibration",
                ],
                outputs=["metrics", "evaluation_metrics"],
                name="combine_metrics",
            ),
            Node(
                plot_training_curves,
                inputs="training_history",
                outputs="training_curves_plot",
                name="plot_training_curves",
            ),
        ],
        tags=["evaluation", "report"],
    ) + Pipeline(
        model_pictures(),
        inputs={"classifier": "evaluated_network"},
        tags=["evaluation", "report"],
    )


def model_pictures() -> Pipeline:
    """The pictures a user reads a classifier by, on the raw test split: permutation feature
    importance and the reliability diagram. ``classifier`` is any ``engine.ensemble.Ensemble``;
    the tuning pipeline reuses this as a namespaced instance for the model it serves."""
    return Pipeline(
        [
            Node(
                importance_report,
                inputs=["classifier", "test_split", "table_schema", "params:evaluation"],
                outputs=["feature_importance", "feature_importance_plot"],
                name="importance_report",
            ),
            Node(
                calibration_report,
                inputs=["classifier", "test_split", "table_schema", "params:evaluation"],
                outputs=["calibration", "calibration_plot"],
                name="calibration_report",
            ),
        ]
    )
