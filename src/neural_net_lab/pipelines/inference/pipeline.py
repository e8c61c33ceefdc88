"""inference: price new phones with the persisted scaler and trained network.

Reads ``phones_to_price`` (an id and the 20 features, no label), writes ``price_predictions``.
The same path, bundled as one MLflow model, is logged and registered by the training run.
"""

from kedro.pipeline import Node, Pipeline

from neural_net_lab.pipelines.tuning.nodes import tuned_model_block
from neural_net_lab.pipelines.tuning.switch import inference_network

from .nodes import price_phones, validate_phones_to_price


def create_pipeline(**kwargs) -> Pipeline:
    # inference.network: tuned prices with the tuning pipeline's network, rebuilt from its blocks.
    tuned = inference_network() == "tuned"
    choice = [
        Node(tuned_model_block, "tuned_parameters", "tuned_model_params", name="tuned_model_block")
    ]
    return Pipeline(
        [
            *(choice if tuned else []),
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
                    "tuned_phone_price_model" if tuned else "phone_price_model",
                    "tuned_model_params" if tuned else "params:model",
                    "params:columns",
                ],
                outputs="price_predictions",
                name="price_phones",
            ),
        ],
        tags="inference",
    )
