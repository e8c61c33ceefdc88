"""Shared fixtures: a copy of the project in a temporary folder, run with real Kedro sessions
against a temporary MLflow SQLite store, and small real model inputs for node tests."""

from __future__ import annotations

import copy
import os
import shutil
import subprocess
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import pandas as pd
import pytest
import torch
import yaml
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DataCatalog, MemoryDataset
from kedro.pipeline import Pipeline
from kedro.runner import SequentialRunner

from neural_net_lab.engine.config import ColumnsParams, ModelParams, OptimizerParams, TrainingParams
from neural_net_lab.table import (
    DataProcessingParams,
    TableSchema,
    fit_scaler,
    split_data,
    standardize,
    stratified_split,
    validate_table,
)

PROJECT_ROOT = Path(__file__).resolve().parents[1]
# The shipped phone table's columns, as its schema derives them.
FEATURES = [
    "battery_power", "blue", "clock_speed", "dual_sim", "fc", "four_g", "int_memory", "m_dep",
    "mobile_wt", "n_cores", "pc", "px_height", "px_width", "ram", "sc_h", "sc_w", "talk_time",
    "three_g", "touch_screen", "wifi",
]  # fmt: skip
COLUMNS: dict[str, Any] = {"target": "price_range"}  # conf/base/parameters.yml
# Settings that keep an end-to-end run to seconds.
FAST_TRAINING = {"training.epochs": 2, "training.progress": False}


@pytest.fixture(scope="session")
def columns() -> dict[str, Any]:
    return COLUMNS


@pytest.fixture(scope="session")
def column_params() -> ColumnsParams:
    """``columns`` as the nodes receive it from Kedro."""
    return ColumnsParams.model_validate(COLUMNS)


@pytest.fixture(scope="session")
def small_model() -> ModelParams:
    """A network that trains on the phone table in a second, its widths derived (20 inputs,
    4 classes). A test that needs other widths says so with
    ``small_model.model_copy(update={"hidden_dims": [128, 256]})``."""
    return ModelParams(input_dim=20, hidden_dims=[16], n_classes=4)


def phone_schema_and_splits(raw: pd.DataFrame) -> dict[str, Any]:
    """What data_processing makes of a table with the shipped settings: the schema, the raw
    splits, the scaler and the standardized splits."""
    params = DataProcessingParams()
    columns = ColumnsParams.model_validate(COLUMNS)
    validated, schema = validate_table(raw, columns, params, ModelParams(hidden_dims=[16]))
    train, test = split_data(validated, schema, params)
    scaler = fit_scaler(train, schema)
    return {"schema": schema, "train_split": train, "test_split": test, "scaler": scaler,
            "train_set": standardize(train, scaler, schema),
            "test_set": standardize(test, scaler, schema)}  # fmt: skip


@pytest.fixture(scope="session")
def small_training() -> TrainingParams:
    """Two quiet epochs of Adam. A test that needs another seed or length overrides it the
    same way (``small_training.model_copy(update={"epochs": 3})``)."""
    adam = OptimizerParams(name="Adam", lr=0.003)
    return TrainingParams(
        seed=0, epochs=2, batch_size=16, validation_share=0.1, optimizer=adam, progress=False
    )


@pytest.fixture(scope="session")
def raw_phones() -> pd.DataFrame:
    """The shipped phone table."""
    return pd.read_csv(PROJECT_ROOT / "data" / "01_raw" / "phone_prices.csv")


@pytest.fixture(scope="session")
def model_inputs(raw_phones) -> dict[str, Any]:
    """Standardized splits of the shipped table, made by the data_processing nodes, the
    scaler's parameters as fit_scaler returns them (what the catalog persists as JSON) and
    the table's schema."""
    inputs = phone_schema_and_splits(raw_phones)
    # Seed 42: the validation rows every node test was written against (training's carve).
    fit_set, validation_set = stratified_split(
        inputs["train_set"], inputs["schema"].target, 42, test_size=0.1
    )
    return {**inputs, "fit_set": fit_set, "validation_set": validation_set}


@pytest.fixture(scope="session")
def table_schema(model_inputs) -> TableSchema:
    """The shipped phone table's schema, as data_processing derives it."""
    return model_inputs["schema"]


def copy_project(folder: Path) -> Path:
    """The project's configuration and raw data in ``folder/project``."""
    project = folder / "project"
    project.mkdir()
    for name in ("pyproject.toml", ".telemetry"):
        shutil.copy(PROJECT_ROOT / name, project / name)
    shutil.copytree(PROJECT_ROOT / "conf" / "base", project / "conf" / "base")
    (project / "conf" / "local").mkdir()
    # Kedro requires a source folder; the code under test is the installed package.
    (project / "src").mkdir()
    shutil.copytree(PROJECT_ROOT / "data" / "01_raw", project / "data" / "01_raw")
    return project


@pytest.fixture
def project_copy(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """The project's configuration and raw data in a temporary folder, with its own MLflow
    store, so that tests never touch the working copy's outputs or runs."""
    project = copy_project(tmp_path)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    yield project
    if mlflow.active_run() is not None:  # a failed run must not leak into the next test
        mlflow.end_run()


def with_setting(block: Mapping[str, Any], dotted: str, value: Any) -> dict[str, Any]:
    """A copy of ``block`` with the setting at a dotted path (``training.epochs``) set."""
    changed = copy.deepcopy(dict(block))
    *parents, leaf = dotted.split(".")
    node = changed
    for key in parents:
        node = node.setdefault(key, {})
    node[leaf] = value
    return changed


def kedro_cli(
    project: Path, *args: str, timeout: int = 300, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    """``kedro <args>`` in ``project`` as a user types it (a new process), output as text."""
    return subprocess.run(
        [sys.executable, "-m", "kedro", *args],
        cwd=project,
        capture_output=True,
        text=True,
        timeout=timeout,
        check=False,
        env={**os.environ, **(env or {})},
    )


def _saved_as_state_dicts() -> set[str]:
    """The catalog entries a PyTorchDataset saves: downstream nodes get their state dicts."""
    catalog = yaml.safe_load((PROJECT_ROOT / "conf/base/catalog.yml").read_text())
    return {
        name
        for name, entry in catalog.items()
        if isinstance(entry, dict) and str(entry.get("type", "")).endswith("PyTorchDataset")
    }


class _Kept(MemoryDataset):
    """A MemoryDataset that the runner cannot empty, so that a test reads every output."""

    def _release(self) -> None:
        pass


class _KeptAsStateDict(_Kept):
    """An output the catalog saves with a PyTorchDataset: a network is kept as its state dict,
    as that dataset hands it on (a network passed in memory stays a network)."""

    def save(self, data: Any) -> None:
        super().save(data.state_dict() if isinstance(data, torch.nn.Module) else data)


def run_in_memory(pipeline: Pipeline, inputs: Mapping[str, Any]) -> dict[str, Any]:
    """Runs a pipeline's nodes with Kedro's SequentialRunner on ``inputs`` held in memory
    (parameters as ``params:<block>``, typed as Kedro would hand them); returns every dataset
    the run made. No files, no hooks, no MLflow run: the nodes as their pipeline wires them,
    which a test outside the pipeline's own folder may run without importing its nodes."""
    names = pipeline.datasets()
    catalog = DataCatalog({name: _Kept(inputs.get(name)) for name in names if name in inputs})
    saved = _saved_as_state_dicts()
    for name in names - set(inputs):
        catalog[name] = _KeptAsStateDict() if name in saved else _Kept()
    SequentialRunner().run(pipeline, catalog)
    return {name: catalog.load(name) for name in pipeline.all_outputs()}


def run_kedro(
    project: Path, pipeline: str | None = None, params: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Runs a pipeline of the project copy in a real KedroSession.

    ``params`` take dotted keys like ``--params`` on the command line (``training.epochs``).
    """
    nested: dict[str, Any] = {}
    for dotted, value in (params or {}).items():
        nested = with_setting(nested, dotted, value)
    bootstrap_project(project)
    with KedroSession.create(project_path=project, runtime_params=nested) as session:
        return session.run(pipeline_name=pipeline)


@pytest.fixture
def client(request, tmp_path, monkeypatch):
    """A client of a temporary MLflow SQLite store, made the tracking store, with the active
    experiment named after the test module (``test_tracking`` → ``tracking``)."""
    uri = f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv("MLFLOW_TRACKING_URI", uri)
    # An earlier Kedro session in this process may have set another store and experiment.
    mlflow.set_tracking_uri(uri)
    mlflow.set_experiment(request.module.__name__.rsplit(".", 1)[-1].removeprefix("test_"))
    yield mlflow.MlflowClient(uri)
    if mlflow.active_run() is not None:  # a failed test must not leak its run
        mlflow.end_run()
    mlflow.set_tracking_uri(None)


def mlflow_client() -> mlflow.MlflowClient:
    """A client of the store that the current test's MLFLOW_TRACKING_URI names."""
    return mlflow.MlflowClient(tracking_uri=os.environ["MLFLOW_TRACKING_URI"])
