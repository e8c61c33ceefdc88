"""training: carve a validation share, train the MLP, log its curves and the served model."""

from __future__ import annotations

from kedro.pipeline import Node, Pipeline

from .nodes import history_to_mlflow, log_served_model, split_validation, train_model


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                split_validation,
                inputs=["train_set", "table_schema", "params:training", "params:model"],
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
                    "table_schema",
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
                    "table_schema",
                    "params:served_model",
                ],
                outputs="served_model_info",
                name="log_served_model",
            ),
        ],
        tags="training",
    )
