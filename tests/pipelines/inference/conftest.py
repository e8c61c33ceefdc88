"""Fixtures of the inference tests: a small network, and the served model logged to a
temporary MLflow store by the training pipeline's node."""

from __future__ import annotations

import os
from collections.abc import Iterator
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch

from neural_net_lab.engine.config import ModelParams
from neural_net_lab.engine.model import mlp_from_params
from neural_net_lab.engine.seeding import seed_everything
from neural_net_lab.serving import ServedModelParams, log_served, scaled_network
from neural_net_lab.table import TableSchema
from tests.conftest import PROJECT_ROOT

PHONES_TO_PRICE = PROJECT_ROOT / "data" / "01_raw" / "phones_to_price.csv"
# Not the project's defaults on purpose: dropout and a non-default slope must survive serving.
MODEL_PARAMS = ModelParams(
    input_dim=20, hidden_dims=[32, 16], n_classes=4, negative_slope=0.05, dropout=0.1
)
SERVED = ServedModelParams(
    name="phone_price_classifier", registered_model_name="phone_price_classifier", example_rows=3
)


@pytest.fixture(scope="session")
def phones_to_price() -> pd.DataFrame:
    """The shipped table of phones to price."""
    return pd.read_csv(PHONES_TO_PRICE)


@pytest.fixture(scope="session")
def model_state() -> dict[str, torch.Tensor]:
    """Weights of a seeded network (untrained: equality of predictions is what is tested)."""
    seed_everything(5)
    return mlp_from_params(MODEL_PARAMS).state_dict()


def reference_predictions(
    phones: pd.DataFrame,
    scaler: Any,
    state: dict[str, torch.Tensor],
    model_params: ModelParams,
    schema: TableSchema,
) -> pd.DataFrame:
    """The model applied by hand, in process: the scaler's mean and scale, network in eval
    mode, softmax, the class codes read as the schema's labels."""
    model = mlp_from_params(model_params)
    model.load_state_dict(state)
    model.eval()
    values = phones[scaler["features"]].to_numpy("float64")
    scaled = ((values - np.asarray(scaler["mean"])) / np.asarray(scaler["scale"])).astype("float32")
    with torch.no_grad():
        logits = model(torch.from_numpy(scaled))
    probabilities = torch.softmax(logits, dim=1).numpy()
    classes = np.asarray(schema.classes)
    frame = pd.DataFrame(
        {"id": phones["id"].to_numpy(), "price_range": classes[logits.argmax(dim=1).numpy()]}
    )
    for i, label in enumerate(schema.classes):
        frame[f"probability_{label}"] = probabilities[:, i]
    return frame


def assert_same_predictions(actual: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same ids, classes and columns; probabilities equal up to float32 rounding."""
    assert list(actual.columns) == list(expected.columns)
    assert actual["id"].tolist() == expected["id"].tolist()
    assert actual["price_range"].tolist() == expected["price_range"].tolist()
    probabilities = [c for c in expected.columns if c.startswith("probability_")]
    np.testing.assert_allclose(
        actual[probabilities].to_numpy("float64"),
        expected[probabilities].to_numpy("float64"),
        rtol=1e-5,
        atol=1e-7,
    )


def served_network(model_inputs, model_state, table_schema):
    """What the training node log_served_model logs: the network with the persisted scaler."""
    return scaled_network(model_inputs["scaler"], model_state, MODEL_PARAMS, table_schema)


@pytest.fixture(scope="module")
def served_store(
    tmp_path_factory, model_inputs, model_state, raw_phones, table_schema
) -> Iterator[str]:
    """A temporary MLflow store in which the served model was logged and registered, as the
    training node log_served_model does."""
    folder = tmp_path_factory.mktemp("served")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    # A Kedro session earlier in this process may have set the global URI to its own store.
    mlflow.set_tracking_uri(uri)
    mlflow.set_registry_uri(uri)
    experiment = mlflow.create_experiment("served", artifact_location=str(folder / "artifacts"))
    with mlflow.start_run(experiment_id=experiment):
        info = log_served(
            served_network(model_inputs, model_state, table_schema),
            raw_phones,
            table_schema,
            SERVED,
        )
    assert info["logged"] and info["registered_model_version"] == 1
    yield uri
    # set_registry_uri also exports MLFLOW_REGISTRY_URI: left behind, it would send later
    # tests' registrations (mlflow.yml has no registry of its own) to this store.
    mlflow.set_registry_uri(None)
    os.environ.pop("MLFLOW_REGISTRY_URI", None)
    mlflow.set_tracking_uri(None)
