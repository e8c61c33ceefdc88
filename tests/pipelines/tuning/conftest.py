"""A tiny tuning configuration: 2 folds, 2 epochs, small widths, a handful of trials; and a
generated table unlike the phone table (string labels, a text column)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import pandas as pd
import pytest
import yaml

from neural_net_lab.engine.config import ColumnsParams, ModelParams
from neural_net_lab.table import (
    DataProcessingParams,
    fit_scaler,
    split_data,
    standardize,
    validate_table,
)
from tests.conftest import PROJECT_ROOT
from tests.tables import make_table

SHIPPED = {
    **yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_training.yml").read_text()),
    **yaml.safe_load((PROJECT_ROOT / "conf/base/parameters_tuning.yml").read_text()),
}


def tiny_blocks(**tuning_changes: Any) -> dict[str, Any]:
    """``model``, ``training`` and ``tuning`` blocks for a study of seconds.

    The optimizer choice SGD with lr 1e12 diverges, so some trials fail with a NaN loss.
    """
    blocks = copy.deepcopy(SHIPPED)
    blocks["model"]["hidden_dims"] = [8]
    blocks["training"].update(epochs=2, progress=False)
    tuning = blocks["tuning"]
    tuning.update(study_name="test", folds=2, seed=3, n_trials=6, timeout=None)
    tuning["pruner"] = {"name": None}
    tuning["search_space"] = {
        "training.optimizer": {
            "type": "categorical",
            "choices": [{"name": "Adam"}, {"name": "SGD", "lr": 1.0e12}],
        },
        "training.optimizer.weight_decay": {
            "type": "float",
            "low": 1.0e-5,
            "high": 1.0e-2,
            "log": True,
            "or_zero": True,
        },
        "model.hidden_dims": {"type": "categorical", "choices": [[8], [16, 8]]},
    }
    tuning["dask"].update(n_workers=2, dashboard_address=None)
    tuning.update(tuning_changes)
    return blocks


def write_local_parameters(project: Path, blocks: dict[str, Any]) -> None:
    """conf/local replaces whole top-level blocks (runtime params cannot drop search keys)."""
    (project / "conf/local/parameters.yml").write_text(yaml.safe_dump(blocks))


@pytest.fixture
def tiny() -> dict[str, Any]:
    return tiny_blocks()


def clinic_table(seed: int = 0) -> pd.DataFrame:
    """A generated table unlike the phone table: string labels, a text column, an ``ID``
    column (not a feature) and 300 rows."""
    return make_table(
        ["benign", "suspect", "malignant"],
        n_features=3,
        text={"shape": ["round", "oval", "jagged"]},
        id_column="ID",
        target="diagnosis",
        seed=seed,
    )


def schema_and_splits(raw: pd.DataFrame, target: str, name: str) -> dict[str, Any]:
    """What data_processing makes of ``raw`` with only ``columns.target`` set: the schema,
    the raw splits, the scaler and the standardized training split."""
    params = DataProcessingParams(table_name=name)
    columns = ColumnsParams(target=target)
    validated, schema = validate_table(raw, columns, params, ModelParams(hidden_dims=[8]))
    train, test = split_data(validated, schema, params)
    scaler = fit_scaler(train, schema)
    return {
        "schema": schema,
        "train_split": train,
        "test_split": test,
        "scaler": scaler,
        "train_set": standardize(train, scaler, schema),
    }


@pytest.fixture(scope="session")
def clinic() -> dict[str, Any]:
    return schema_and_splits(clinic_table(), "diagnosis", "clinic table")
