"""data_processing: load → validate → stratified split → standardize (fitted on train only)."""

from kedro.pipeline import Node, Pipeline

from .nodes import fit_scaler, split_data, standardize, validate_phone_prices


def create_pipeline(**kwargs) -> Pipeline:
    return Pipeline(
        [
            Node(
                validate_phone_prices,
                inputs=["phone_prices", "params:columns", "params:data_processing"],
                outputs="validated_phone_prices",
                name="validate_phone_prices",
            ),
            Node(
                split_data,
                inputs=["validated_phone_prices", "params:columns", "params:data_processing"],
                outputs=["train_split", "test_split"],
                name="split_data",
            ),
            Node(
                fit_scaler,
                inputs=["train_split", "params:columns"],
                outputs="scaler",
                name="fit_scaler",
            ),
            Node(
                standardize,
                inputs=["train_split", "scaler", "params:columns"],
                outputs="train_set",
                name="standardize_train",
            ),
            Node(
                standardize,
                inputs=["test_split", "scaler", "params:columns"],
                outputs="test_set",
                name="standardize_test",
            ),
        ],
        tags="data",
    )
