"""inference end to end: the default `kedro run` registers the served model, `kedro run
--pipelines inference` writes the predictions, and both agree with the model applied by hand."""

from __future__ import annotations

import json
import subprocess
import sys

import pandas as pd
import pytest
import yaml
from kedro_datasets.json import JSONDataset
from kedro_datasets_experimental.pytorch import PyTorchDataset

from neural_net_lab.datasets.table_schema import TableSchemaDataset
from neural_net_lab.engine.config import ModelParams
from neural_net_lab.engine.model import mlp_from_params
from neural_net_lab.hooks import MissingInputError
from neural_net_lab.table import DataValidationError, TableSchema
from tests.conftest import FAST_TRAINING, mlflow_client, run_kedro

from .conftest import assert_same_predictions, reference_predictions

# Loads the registered model in a fresh interpreter where the project, Kedro and
# kedro-mlflow cannot be imported: the model must carry everything it needs.
LOAD_WITHOUT_PROJECT = """
import sys
for name in ("neural_net_lab", "kedro", "kedro_mlflow"):
    sys.modules[name] = None  # any import of them now raises ImportError
import mlflow
import pandas as pd
model = mlflow.pyfunc.load_model("models:/phone_price_classifier/latest")
model.predict(pd.read_csv(sys.argv[1])).to_csv(sys.argv[2], index=False)
"""


def configured_model(project, schema: TableSchema) -> ModelParams:
    """The ``model`` block of the project copy, with the widths the table gives."""
    parameters = yaml.safe_load((project / "conf/base/parameters_training.yml").read_text())
    return schema.network(ModelParams.model_validate(parameters["model"]))


def test_default_run_registers_a_model_that_prices_like_the_batch_pipeline(project_copy, tmp_path):
    run_kedro(project_copy, params=FAST_TRAINING)
    run_kedro(project_copy, "inference")

    phones = pd.read_csv(project_copy / "data/01_raw/phones_to_price.csv")
    batch = pd.read_csv(project_copy / "data/07_model_output/price_predictions.csv")
    models = project_copy / "data/06_models"
    state = PyTorchDataset(filepath=str(models / "phone_price_model.pt")).load()
    scaler = JSONDataset(filepath=str(models / "scaler.json")).load()
    schema = TableSchemaDataset(filepath=str(models / "table_schema.json")).load()
    assert not list(project_copy.glob("data/**/*.pkl"))  # nothing is persisted as a pickle
    model_params = configured_model(project_copy, schema)
    assert_same_predictions(
        batch, reference_predictions(phones, scaler, state, model_params, schema)
    )

    served = json.loads((models / "served_model.json").read_text())
    client = mlflow_client()
    (run,) = client.search_runs(
        [client.get_experiment_by_name("neural_net_lab").experiment_id],
        filter_string="attributes.run_name = '__default__'",
    )
    assert served["logged"] and served["run_id"] == run.info.run_id
    version = client.get_model_version("phone_price_classifier", "1")
    assert version.run_id == run.info.run_id

    output = tmp_path / "served_predictions.csv"
    phones_csv = str(project_copy / "data/01_raw/phones_to_price.csv")
    loaded = subprocess.run(
        [sys.executable, "-c", LOAD_WITHOUT_PROJECT, phones_csv, str(output)],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=180,
        check=False,
    )
    assert loaded.returncode == 0, loaded.stderr[-3000:]
    assert_same_predictions(pd.read_csv(output), batch)


def test_inference_names_what_is_missing_or_broken(project_copy, model_inputs, table_schema):
    with pytest.raises(
        MissingInputError,
        match="phone_price_model.*written by the training.*table_schema.*written by the data_pro",
    ):
        run_kedro(project_copy, "inference")

    # Any scaler and weights of the configured shape will do: the run must stop at validation.
    models = project_copy / "data/06_models"
    JSONDataset(filepath=str(models / "scaler.json")).save(model_inputs["scaler"])
    TableSchemaDataset(filepath=str(models / "table_schema.json")).save(table_schema)
    model_params = configured_model(project_copy, table_schema)
    PyTorchDataset(filepath=str(models / "phone_price_model.pt")).save(
        mlp_from_params(model_params)
    )
    phones = pd.read_csv(project_copy / "data/01_raw/phones_to_price.csv")
    phones.drop(columns="ram").to_csv(project_copy / "data/01_raw/phones_to_price.csv", index=False)
    with pytest.raises(
        DataValidationError, match=r"missing feature column\(s\) \['ram'\]"
    ) as error:
        run_kedro(project_copy, "inference")
    assert any("phones_to_price.csv" in note for note in error.value.__notes__)
    assert not (project_copy / "data/07_model_output/price_predictions.csv").exists()
