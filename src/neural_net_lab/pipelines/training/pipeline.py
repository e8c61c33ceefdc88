"""training: carve a validation share, train the MLP, log its curves and the served model.

``variant_pipeline`` namespaces one training-variant template per experiment variant;
the optimizers and regularization experiments are built from it.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import (
    history_to_mlflow,
    log_served_model,
    split_validation,
    train_model,
    train_variant,
)


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
                inputs=["fit_set", "validation_set", "params:model", "params:training", "params:columns"],
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
                inputs=["phone_price_model", "scaler", "phone_prices", "params:model",
                        "params:columns", "params:served_model"],
                outputs="served_model_info",
                name="log_served_model",
            ),  # fmt: skip
        ],
        tags="training",
    )


def variant_pipeline(experiment: str, variant: str) -> Pipeline:
    """One variant of an experiment: the training template under ``<experiment>.<variant>``.

    It reads the shared split and the default ``model``/``training`` parameters, plus its own
    block ``<experiment>.<variant>`` (a ``name`` for its MLflow child run and ``model`` /
    ``training`` overrides), and outputs ``<experiment>.<variant>.result``.
    """
    template = Pipeline(
        [
            Node(
                train_variant,
                inputs=["fit_set", "validation_set", "test_set", "params:model",
                        "params:training", "params:variant", "params:columns"],
                outputs="result",
                name="train_variant",
            )
        ]
    )  # fmt: skip
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
