"""Synthetic phone-price table: the shipped data's generator, at any size."""

from kedro.pipeline import Node, Pipeline

from .nodes import generate_phone_table


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                generate_phone_table,
                inputs="params:synthetic_data",
                outputs="phone_prices_synthetic",
                name="generate_phone_table",
            )
        ],
        tags="data",
    )
