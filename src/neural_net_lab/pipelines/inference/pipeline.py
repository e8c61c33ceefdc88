"""inference: price new phones with the persisted scaler and trained network.

Reads ``phones_to_price`` (an id and the 20 features, no label), writes ``price_predictions``.
The same path, bundled as one MLflow model, is logged and registered by the training run.
"""

from kedro.pipeline import Node, Pipeline

from .nodes import price_phones, validate_phones_to_price


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                validate_phones_to_price,
                inputs=["phones_to_price", "params:columns"],
                outputs="validated_phones_to_price",
                name="validate_phones_to_price",
            ),
            Node(
                price_phones,
                inputs=[
                    "validated_phones_to_price",
                    "scaler",
                    "phone_price_model",
                    "params:model",
                    "params:columns",
                ],
                outputs="price_predictions",
                name="price_phones",
            ),
        ],
        tags="inference",
    )
