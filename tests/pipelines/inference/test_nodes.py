"""inference nodes: the shipped input file, predictions, and input validation."""

from __future__ import annotations

import logging

import numpy as np
import pandas as pd
import pytest
from torch import nn

from neural_net_lab.data_generation.phone_prices import sample_phone_features
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.pipelines.inference.nodes import price_phones, validate_phones_to_price
from neural_net_lab.serving import network_layers
from neural_net_lab.table import DataValidationError

from .conftest import MODEL_PARAMS, assert_same_predictions, reference_predictions

# How data/01_raw/phones_to_price.csv was made (docs/inference.md).
N_ROWS, SEED = 100, 7


def test_shipped_phones_to_price_is_the_generators_output(phones_to_price):
    expected = sample_phone_features(N_ROWS, np.random.default_rng(SEED))
    expected.insert(0, "id", np.arange(1, N_ROWS + 1))
    pd.testing.assert_frame_equal(phones_to_price, expected)


def test_batch_predictions_equal_the_in_process_model(
    phones_to_price, model_inputs, model_state, table_schema
):
    validated = validate_phones_to_price(phones_to_price, table_schema)
    predictions = price_phones(
        validated, model_inputs["scaler"], model_state, MODEL_PARAMS, table_schema
    )
    expected = reference_predictions(
        phones_to_price, model_inputs["scaler"], model_state, MODEL_PARAMS, table_schema
    )
    assert_same_predictions(predictions, expected)
    probabilities = predictions.filter(like="probability_").to_numpy()
    np.testing.assert_allclose(probabilities.sum(axis=1), 1.0, rtol=1e-6)
    assert predictions["price_range"].isin(table_schema.classes).all()


def test_extra_columns_are_ignored_with_a_warning(phones_to_price, table_schema, caplog):
    with caplog.at_level(logging.WARNING):
        validated = validate_phones_to_price(phones_to_price.assign(colour="red"), table_schema)
    assert "colour" in caplog.text
    assert list(validated.columns) == ["id", *table_schema.features]


def test_rows_without_an_id_column_are_numbered_from_0(phones_to_price, table_schema, caplog):
    with caplog.at_level(logging.INFO):
        validated = validate_phones_to_price(phones_to_price.drop(columns="id"), table_schema)
    assert "no id column 'id'" in caplog.text
    assert validated["id"].tolist() == list(range(len(phones_to_price)))
    assert list(validated.columns) == ["id", *table_schema.features]


@pytest.mark.parametrize(
    ("breakage", "message"),
    [
        (
            lambda f: f.drop(columns=["ram", "wifi"]),
            r"missing feature column\(s\) \['ram', 'wifi'\]",
        ),
        (
            lambda f: f.assign(ram=f["ram"].astype(object).where(f.index != 3, "lots")),
            r"column 'ram': 1 row\(s\) not numeric",
        ),
        (
            lambda f: f.assign(fc=f["fc"].where(f.index > 1)),
            r"column 'fc': 2 row\(s\) with missing",
        ),
        (lambda f: f.assign(id=f["id"].where(f.index != 4)), r"column 'id': 1 row\(s\) without"),
        (lambda f: f.assign(id=1), r"column 'id': 1 id\(s\) used more than once"),
        (lambda f: f.iloc[:0], "no rows"),
    ],
)
def test_bad_input_is_refused_naming_the_column(phones_to_price, table_schema, breakage, message):
    with pytest.raises(DataValidationError, match=f"rows to price: .*{message}"):
        validate_phones_to_price(breakage(phones_to_price.copy()), table_schema)


def test_class_count_mismatch_is_named(phones_to_price, model_inputs, model_state, table_schema):
    validated = validate_phones_to_price(phones_to_price, table_schema)
    three_classes = table_schema.model_copy(update={"classes": [0, 1, 2]})
    with pytest.raises(
        ParameterError, match=r"model\.n_classes: is 4 but .* gives 3 \(classes \[0, 1, 2\]"
    ):
        price_phones(validated, model_inputs["scaler"], model_state, MODEL_PARAMS, three_classes)


def test_served_network_refuses_layers_it_cannot_rebuild():
    with pytest.raises(ValueError, match="BatchNorm1d"):
        network_layers(nn.Sequential(nn.Linear(3, 4), nn.BatchNorm1d(4), nn.Linear(4, 2)))
