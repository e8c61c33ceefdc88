"""data_processing: load → validate and derive the schema → stratified split → standardize
(the scaler fitted on the training split only)."""

from kedro.pipeline import Node, Pipeline

from .nodes import fit_scaler, split_data, standardize, validate_table


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                validate_table,
                inputs=[
                    "phone_prices",
                    "params:columns",
                    "params:data_processing",
                    "params:model",
                ],
                outputs=["validated_phone_prices", "table_schema"],
                name="validate_phone_prices",
            ),
            Node(
                split_data,
                inputs=["validated_phone_prices", "table_schema", "params:data_processing"],
                outputs=["train_split", "test_split"],
                name="split_data",
            ),
            Node(
                fit_scaler,
                inputs=["train_split", "table_schema"],
                outputs="scaler",
                name="fit_scaler",
            ),
            Node(
                standardize,
                inputs=["train_split", "scaler", "table_schema"],
                outputs="train_set",
                name="standardize_train",
            ),
            Node(
                standardize,
                inputs=["test_split", "scaler", "table_schema"],
                outputs="test_set",
                name="standardize_test",
            ),
        ],
        tags="data",
    )
