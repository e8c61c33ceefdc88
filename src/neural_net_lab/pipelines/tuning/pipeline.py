"""tuning: stratified k-fold cross-validated search with Optuna, trials on Dask, one MLflow
child run per trial; baselines tuned on the same folds (one child run each); the chosen
configuration's fold networks rebuilt as an ensemble and the configuration refit on the whole
training split; the served kind and every tuned baseline scored again on fresh repeated folds
and every candidate once on the test split, paired, with intervals and verdicts in words; what
``tuning.final`` names (ensemble or refit) saved as tuned_* and registered with the alias
``tuned``, with its feature importance and calibration.

It includes the data_processing nodes, so a fresh checkout runs ``kedro run --pipelines tuning``
on its own (docs/tuning.md).
"""

from kedro.pipeline import Node, Pipeline

from neural_net_lab.pipelines.data_processing.pipeline import create_pipeline as data_processing
from neural_net_lab.pipelines.evaluation.pipeline import model_pictures

from .nodes import (
    choose_configuration,
    comparison_plot,
    log_tuned_model,
    prepare_folds,
    rebuild_fold_networks,
    refit,
    refit_tuned,
    run_description,
    run_study,
    score_repeated_folds,
    score_tuning,
    served_classifier,
    study_plots,
    summary_report,
    trials_report,
    tune_baselines,
    tuned_environment,
)


def create_pipeline(**kwargs) -> Pipeline:
    # `tuning_model` is `params:model` with the widths the table gives (prepare_folds derives
    # them once from table_schema): every network below is built from it.
    blocks = {"tuning": "params:tuning", "model": "tuning_model", "training": "params:training"}
    search = Pipeline(
        [
            Node(
                prepare_folds,
                inputs=[
                    "train_split",
                    "table_schema",
                    "params:tuning",
                    "params:model",
                    "params:training",
                ],
                outputs=["tuning_cv_data", "tuning_model"],
                name="prepare_folds",
            ),
            Node(
                run_study,
                inputs={"cv_data": "tuning_cv_data", "storage": "tuning_study_storage", **blocks},
                outputs=["tuning_study_trials", "tuning_study_name"],
                name="run_study",
            ),
            Node(
                choose_configuration,
                inputs=["tuning_study_trials", "tuning_model", "params:training", "params:tuning"],
                outputs="tuned_parameters",
                name="choose_configuration",
            ),
            Node(
                tuned_environment,
                inputs="tuned_parameters",
                outputs="tuned_environment",
                name="tuned_environment",
            ),
        ]
    )
    final = Pipeline(
        [
            Node(
                tune_baselines,
                inputs=["tuning_cv_data", "test_split", "table_schema", "params:tuning"],
                outputs=["tuning_baselines", "tuning_baseline_test_rows"],
                name="tune_baselines",
            ),
            Node(
                rebuild_fold_networks,
                inputs=["tuning_cv_data", "tuned_parameters", "params:tuning"],
                outputs=["tuned_ensemble", "tuning_ensemble_check"],
                name="rebuild_fold_networks",
            ),
            Node(
                refit_tuned,
                inputs=["train_set", "tuned_parameters", "table_schema"],
                outputs="tuned_phone_price_model",
                name="refit_tuned",
            ),
            Node(
                refit,
                inputs=["train_set", "tuning_model", "params:training", "table_schema"],
                outputs="tuning_default_model",
                name="refit_default",
            ),
            Node(
                score_repeated_folds,
                inputs=["tuning_cv_data", "tuned_parameters", "tuning_baselines", "params:tuning"],
                outputs="tuning_repeated_cv",
                name="score_repeated_folds",
            ),
            Node(
                score_tuning,
                inputs={
                    "ensemble": "tuned_ensemble",
                    "ensemble_check": "tuning_ensemble_check",
                    "refit_network": "tuned_phone_price_model",
                    "default_network": "tuning_default_model",
                    "tuned": "tuned_parameters",
                    "trials": "tuning_study_trials",
                    "study_name": "tuning_study_name",
                    "cv_data": "tuning_cv_data",
                    "baselines": "tuning_baselines",
                    "baseline_test_rows": "tuning_baseline_test_rows",
                    "repeated": "tuning_repeated_cv",
                    "test_split": "test_split",
                    "scaler": "scaler",
                    "schema": "table_schema",
                    "evaluation": "params:evaluation",
                    "tuning": "params:tuning",
                    "model": "tuning_model",
                },
                outputs=["tuning_metrics", "tuning_mlflow_metrics"],
                name="score_tuning",
            ),
            Node(
                log_tuned_model,
                inputs={
                    "ensemble": "tuned_ensemble",
                    "refit_network": "tuned_phone_price_model",
                    "tuned": "tuned_parameters",
                    "scaler": "scaler",
                    "raw_table": "phone_prices",
                    "schema": "table_schema",
                    "served_model": "params:served_model",
                },
                outputs="tuned_served_model",
                name="log_tuned_model",
            ),
        ]
    )
    report = Pipeline(
        [
            Node(trials_report, "tuning_study_trials", "tuning_trials", name="trials_report"),
            Node(
                summary_report,
                ["tuning_trials", "tuning_metrics"],
                "tuning_summary",
                name="summary_report",
            ),
            Node(
                comparison_plot,
                "tuning_metrics",
                "tuning_comparison_plot",
                name="comparison_plot",
            ),
            Node(
                run_description,
                "tuning_metrics",
                "tuning_run_description",
                name="run_description",
            ),
            Node(
                served_classifier,
                [
                    "tuned_ensemble",
                    "tuned_phone_price_model",
                    "tuned_parameters",
                    "scaler",
                    "table_schema",
                ],
                "tuned_classifier",
                name="served_classifier",
            ),
            Node(
                study_plots,
                "tuning_study_trials",
                ["tuning_history_plot", "tuning_importance_plot"],
                name="study_plots",
            ),
        ],
        tags="report",
    )
    # The evaluation's pictures of the served model: the same nodes, one namespaced instance.
    pictures = Pipeline(
        model_pictures(),
        namespace="tuned",
        inputs={
            "classifier": "tuned_classifier",
            "test_split": "test_split",
            "table_schema": "table_schema",
        },
        parameters={"params:evaluation": "params:evaluation"},
        outputs={
            name: f"tuned_{name}"
            for name in ("feature_importance", "feature_importance_plot")
            + ("calibration", "calibration_plot")
        },
        tags="report",
    )
    return data_processing() + Pipeline([search, final, report, pictures], tags="tuning")
