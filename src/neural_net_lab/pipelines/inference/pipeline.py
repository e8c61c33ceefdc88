"""inference: classify new rows with the persisted schema, scaler and trained network.

Reads ``phones_to_price`` (an id and the table's features, no label), writes
``price_predictions``.
The same path, bundled as one MLflow model, is logged and registered by the training run.
``inference.network: tuned`` prices with what the tuning pipeline serves as ``@tuned`` (its
fold ensemble or its refit, as tuned_parameters.yml's ``final`` says).
"""

from kedro.pipeline import Node, Pipeline

from neural_net_lab.serving import tuned_classifier

from .network_choice import inference_network
from .nodes import price_phones, price_phones_with, validate_phones_to_price


def create_pipeline(**kwargs) -> Pipeline:
    if inference_network() == "tuned":
        pricing = [
            Node(
                tuned_classifier,
                inputs=[
                    "tuned_parameters",
                    "tuned_ensemble",
                    "tuned_phone_price_model",
                    "scaler",
                    "table_schema",
                ],
                outputs="tuned_classifier",
                name="tuned_classifier",
            ),
            Node(
                price_phones_with,
                inputs=["validated_phones_to_price", "tuned_classifier", "table_schema"],
                outputs="price_predictions",
                name="price_phones",
            ),
        ]
    else:
        pricing = [
            Node(
                price_phones,
                inputs=[
                    "validated_phones_to_price",
                    "scaler",
                    "phone_price_model",
                    "params:model",
                    "table_schema",
                ],
                outputs="price_predictions",
                name="price_phones",
            )
        ]
    return Pipeline(
        [
            Node(
                validate_phones_to_price,
                inputs=["phones_to_price", "table_schema"],
                outputs="validated_phones_to_price",
                name="validate_phones_to_price",
            ),
            *pricing,
        ],
        tags="inference",
    )
