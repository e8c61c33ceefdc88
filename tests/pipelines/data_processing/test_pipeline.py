"""data_processing: validation errors, stratified split, scaler fitted on train only."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from kedro_datasets.json import JSONDataset
from sklearn.preprocessing import StandardScaler

from neural_net_lab.engine.config import ColumnsParams, ModelParams
from neural_net_lab.engine.errors import ParameterError
from neural_net_lab.table import (
    DataProcessingParams,
    DataValidationError,
    fit_scaler,
    split_data,
    standardize,
    validate_table,
)
from tests.conftest import FEATURES, PROJECT_ROOT, run_kedro

PARAMS = DataProcessingParams(train_share=0.8, random_state=66, min_rows_per_class=10)
MODEL = ModelParams(hidden_dims=[128, 256])  # the shipped block: its widths are derived


@pytest.fixture(scope="module")
def columns(column_params):
    """The columns block as the nodes receive it from Kedro (typed: the target only)."""
    return column_params


def test_validation_accepts_shipped_table_and_drops_id(raw_phones, columns):
    with_id = raw_phones.assign(id=np.arange(len(raw_phones)))
    validated, schema = validate_table(with_id, columns, PARAMS, MODEL)
    assert list(validated.columns) == [*FEATURES, "price_range"]
    assert (schema.features, schema.inputs, schema.id) == (FEATURES, FEATURES, "id")
    assert schema.classes == [0, 1, 2, 3]
    assert (schema.network(MODEL).input_dim, schema.network(MODEL).n_classes) == (20, 4)
    assert len(validated) == 2000
    assert validated["price_range"].value_counts().to_dict() == {0: 500, 1: 500, 2: 500, 3: 500}


def test_a_declared_width_the_table_does_not_give_is_named(raw_phones, columns):
    declared = MODEL.model_copy(update={"input_dim": 21})
    with pytest.raises(ParameterError, match=r"^model\.input_dim: is 21 but .* gives 20"):
        validate_table(raw_phones, columns, PARAMS, declared)


def test_missing_feature_column_is_named(raw_phones, columns):
    listed = ColumnsParams.model_validate({**columns.dump(), "features": FEATURES})
    with pytest.raises(
        DataValidationError,
        match=r"columns.features lists column\(s\) \['ram', 'wifi'\] that the table does not have",
    ):
        validate_table(raw_phones.drop(columns=["ram", "wifi"]), listed, PARAMS, MODEL)


def test_non_numeric_values_are_counted_per_column(raw_phones, columns, model_inputs):
    broken = raw_phones.astype({"ram": object})
    broken.loc[:2, "ram"] = "lots"
    # In the training table, a numeric column with a few words reads as a text column of
    # too many values: the error counts the numbers among them.
    with pytest.raises(
        DataValidationError,
        match=r"text column 'ram' has \d+ distinct values.*1997 of its 2000 values are numbers",
    ):
        validate_table(broken, columns, PARAMS, MODEL)
    # Against the schema (a numeric 'ram'), the words are counted.
    with pytest.raises(DataValidationError, match=r"column 'ram': 3 row\(s\) not numeric"):
        standardize(broken, model_inputs["scaler"], model_inputs["schema"])


def test_missing_values_are_counted_per_column(raw_phones, columns):
    broken = raw_phones.copy()
    broken.loc[:4, "battery_power"] = np.nan
    with pytest.raises(
        DataValidationError, match=r"column 'battery_power': 5 row\(s\) with missing"
    ):
        validate_table(broken, columns, PARAMS, MODEL)


def test_labels_outside_declared_classes_are_rejected(raw_phones, columns):
    broken = raw_phones.copy()
    broken.loc[:1, "price_range"] = 7
    declared = ColumnsParams.model_validate({**columns.dump(), "classes": [0, 1, 2, 3]})
    with pytest.raises(DataValidationError, match=r"'price_range': 2 row\(s\) with labels outside"):
        validate_table(broken, declared, PARAMS, MODEL)


def test_missing_label_column_is_named(raw_phones, columns):
    with pytest.raises(
        DataValidationError, match=r"no label column 'price_range' \(columns.target\)"
    ):
        validate_table(raw_phones.drop(columns="price_range"), columns, PARAMS, MODEL)


def test_class_too_small_to_stratify_is_rejected(raw_phones, columns):
    rare = pd.concat(
        [raw_phones[raw_phones.price_range != 3], raw_phones[raw_phones.price_range == 3].head(3)]
    )
    with pytest.raises(DataValidationError, match=r"\{3: 3\} have fewer than 10 rows"):
        validate_table(rare, columns, PARAMS, MODEL)


def test_split_is_stratified_and_deterministic(raw_phones, columns):
    validated, schema = validate_table(raw_phones, columns, PARAMS, MODEL)
    train, test = split_data(validated, schema, PARAMS)
    assert (len(train), len(test)) == (1600, 400)
    assert train.price_range.value_counts().unique().tolist() == [400]
    assert test.price_range.value_counts().unique().tolist() == [100]
    again_train, _ = split_data(validated, schema, PARAMS)
    pd.testing.assert_frame_equal(train, again_train)


def test_bad_train_share_is_named():
    with pytest.raises(ParameterError, match=r"^data_processing.train_share: must be < 1, got 1.5"):
        DataProcessingParams.model_validate({**PARAMS.dump(), "train_share": 1.5})


def test_scaler_is_fitted_on_the_training_split_only(raw_phones, columns):
    validated, schema = validate_table(raw_phones, columns, PARAMS, MODEL)
    train, test = split_data(validated, schema, PARAMS)
    scaler = fit_scaler(train, schema)
    inputs = schema.inputs
    assert scaler["features"] == inputs == FEATURES and scaler["n_samples_seen"] == len(train)
    np.testing.assert_allclose(scaler["mean"], train[inputs].mean().to_numpy())
    assert not np.allclose(scaler["mean"], validated[inputs].mean().to_numpy())
    scaled_train = standardize(train, scaler, schema)
    np.testing.assert_allclose(scaled_train[inputs].mean().to_numpy(), 0, atol=1e-5)
    # The test split keeps its own offset: it was not used to fit.
    assert np.abs(standardize(test, scaler, schema)[inputs].mean().to_numpy()).max() > 1e-3
    assert (scaled_train.price_range.to_numpy() == train.price_range.to_numpy()).all()


def test_persisted_scaler_standardizes_bitwise_like_standard_scaler(raw_phones, columns, tmp_path):
    """The JSON parameters reproduce StandardScaler.transform exactly on every shipped table
    that the project standardizes, so no model input or prediction changes."""
    validated, schema = validate_table(raw_phones, columns, PARAMS, MODEL)
    train, test = split_data(validated, schema, PARAMS)
    features = schema.inputs
    reference = StandardScaler().fit(train[features])
    persisted = JSONDataset(filepath=str(tmp_path / "scaler.json"))
    persisted.save(fit_scaler(train, schema))
    scaler = persisted.load()
    raw = PROJECT_ROOT / "data/01_raw"
    tables = {
        "train": train,
        "test": test,
        "new market (int64 and float64 columns)": pd.read_csv(raw / "phone_prices_new_market.csv"),
        "phones to price (an id column beside the features)": pd.read_csv(
            raw / "phones_to_price.csv"
        ),
    }
    for name, table in tables.items():
        expected = reference.transform(table[features]).astype("float32")
        actual = standardize(table, scaler, schema)[features].to_numpy()
        assert actual.dtype == np.float32, name
        np.testing.assert_array_equal(actual, expected, err_msg=name)


def test_scaler_for_other_features_is_refused_naming_them(model_inputs, table_schema):
    scaler, train = model_inputs["scaler"], model_inputs["train_split"]
    renamed = {**scaler, "features": [*scaler["features"][:-1], "wlan"]}
    named = r"not in the scaler: \['wifi'\].*not in the table schema: \['wlan'\]"
    with pytest.raises(ValueError, match=named):
        standardize(train, renamed, table_schema)
    reordered = {**scaler, "features": scaler["features"][::-1]}
    with pytest.raises(ValueError, match="same inputs in another order"):
        standardize(train, reordered, table_schema)
    with pytest.raises(ValueError, match=r"'scale' holds 19 value\(s\) for 20 inputs"):
        standardize(train, {**scaler, "scale": scaler["scale"][1:]}, table_schema)
    with pytest.raises(ValueError, match=r"non-positive scale for \['battery_power'\]"):
        standardize(train, {**scaler, "scale": [0.0, *scaler["scale"][1:]]}, table_schema)
    with pytest.raises(DataValidationError, match=r"missing feature column\(s\) \['ram'\]"):
        standardize(train.drop(columns="ram"), scaler, table_schema)


def test_invalid_raw_file_stops_the_run_and_keeps_earlier_outputs(project_copy):
    run_kedro(project_copy, "data_processing")
    train_set = project_copy / "data/05_model_input/train_set.parquet"
    before = train_set.read_bytes()
    raw = project_copy / "data/01_raw/phone_prices.csv"
    table = pd.read_csv(raw)
    table.loc[:9, "ram"] = None
    table.to_csv(raw, index=False)
    with pytest.raises(DataValidationError) as error:
        run_kedro(project_copy, "data_processing")
    assert "column 'ram': 10 row(s) with missing values" in str(error.value)
    assert any("phone_prices.csv" in note for note in error.value.__notes__)
    assert train_set.read_bytes() == before
