"""Your own table (README, "Your own table"): tables that are not the phone table, configured
by their file and label column alone.

The node tests run each generated table (string labels, labels 1…K, a boolean label, a text
column, 2 and 10 classes, 64 features) through the data_processing, training, evaluation and
inference nodes. Two tables run the whole chain as a user would: `kedro run`, inference, the
served MLflow model and a short tuning study. The contradiction tests check that every
disagreement between the parameters and the table stops the run at its first node, naming
it, with the earlier outputs left as they were.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import yaml
from matplotlib import pyplot as plt

from neural_net_lab.engine.config import ColumnsParams, ModelParams, OptimizerParams, TrainingParams
from neural_net_lab.linear_baseline import EvaluationParams
from neural_net_lab.pipelines.data_processing.pipeline import create_pipeline as data_processing
from neural_net_lab.pipelines.evaluation.pipeline import create_pipeline as evaluation
from neural_net_lab.pipelines.inference.pipeline import create_pipeline as inference
from neural_net_lab.pipelines.training.pipeline import create_pipeline as training
from neural_net_lab.serving import ServedModelParams
from neural_net_lab.serving.phone_price_classifier import table_inputs
from neural_net_lab.table import (
    DataProcessingParams,
    DataValidationError,
    derive_schema,
    encode_features,
    split_data,
)

from .conftest import copy_project, mlflow_client, run_in_memory, run_kedro
from .tables import make_table, write_csv

CASES: dict[str, dict[str, Any]] = {
    "string labels": {"labels": ["benign", "malignant"]},
    "labels 1..K": {"labels": [1, 2, 3]},
    "boolean label": {"labels": [False, True]},
    "text column": {"labels": ["lo", "mid", "hi"], "text": {"colour": ["red", "green", "blue"]}},
    "10 classes": {"labels": list("abcdefghij"), "n_rows": 600},
    "64 features": {"labels": [0, 1, 2], "n_features": 64},
}
TRAINING = TrainingParams(
    seed=0, epochs=3, batch_size=16, optimizer=OptimizerParams(name="Adam", lr=0.01), progress=False
)
MODEL = ModelParams(hidden_dims=[16])
SERVED = ServedModelParams(name="served", registered_model_name=None, example_rows=3)


def as_read(frame: pd.DataFrame, folder: Path) -> pd.DataFrame:
    """The table as the catalog's CSV dataset reads it back (its types are the user's)."""
    return pd.read_csv(write_csv(frame, folder / "table.csv"))


@pytest.mark.parametrize("case", list(CASES))
def test_a_table_runs_through_the_nodes_by_its_label_column_alone(case, tmp_path):
    """The default run's and inference's nodes, as their pipelines wire them, in memory."""
    table = as_read(make_table(**CASES[case]), tmp_path)
    labels = CASES[case]["labels"]
    rows_to_price = table.drop(columns="label").sample(20, random_state=0)
    made = run_in_memory(
        data_processing() + training() + evaluation() + inference(),
        {
            "phone_prices": table,
            "phones_to_price": rows_to_price,
            "params:columns": ColumnsParams(target="label"),
            "params:data_processing": DataProcessingParams(),
            "params:model": MODEL,
            "params:training": TRAINING,
            "params:evaluation": EvaluationParams(baseline={"max_iter": 500}),
            "params:served_model": SERVED,
        },
    )
    schema = made["table_schema"]
    assert schema.classes == sorted(labels)
    assert schema.features == [c for c in table.columns if c != "label"]
    assert schema.input_dim == len(schema.inputs)
    assert schema.n_classes == len(labels)
    # The network sees the class codes 0…K−1, in the order of schema.classes.
    codes, raw_labels = made["train_set"]["label"], made["train_split"]["label"]
    assert sorted(codes.unique()) == list(range(len(labels)))
    assert schema.labels(codes).tolist() == raw_labels.tolist()
    weights = made["phone_price_model"]  # a state dict, as the catalog hands it on
    assert weights["0.weight"].shape[1] == schema.input_dim
    assert weights[f"{len(MODEL.hidden_dims) * 2}.weight"].shape[0] == len(labels)
    assert len(made["training_history"]["val_accuracy"]) == TRAINING.epochs

    # What a user reads shows the table's own labels.
    assert {str(label) for label in labels} <= set(made["classification_report"])
    axis = made["confusion_matrix_plot"].axes[0]
    assert [t.get_text() for t in axis.get_xticklabels()] == [str(c) for c in schema.classes]
    priced = made["price_predictions"]
    assert set(priced["label"]) <= set(labels)
    assert list(priced.columns) == ["id", "label", *(f"probability_{c}" for c in schema.classes)]
    assert priced["id"].tolist() == list(range(len(rows_to_price)))  # no id column: numbered
    plt.close("all")  # the evaluation's figures (a run's MatplotlibDataset saves them)


def test_text_columns_are_one_hot_encoded_with_training_categories(tmp_path, caplog):
    table = as_read(
        make_table(["a", "b"], text={"colour": ["red", "green", "blue"], "size": ["S", "L"]}),
        tmp_path,
    )
    params = DataProcessingParams()
    validated, schema = derive_schema(table, ColumnsParams(target="label"), params)
    assert schema.categories == {"colour": ["blue", "green", "red"], "size": ["L", "S"]}
    assert schema.inputs == [
        "x0", "x1", "x2", "x3", "x4",
        "colour_blue", "colour_green", "colour_red", "size_L", "size_S",
    ]  # fmt: skip
    train, _ = split_data(validated, schema, params)
    encoded = encode_features(train, schema, "training split")
    assert encoded[:, 5:8].sum(axis=1).tolist() == [1.0] * len(train)

    # A category unseen in training is none of the column's inputs, counted and logged.
    new = train.head(3).assign(colour=["purple", "red", "purple"])
    encoded = encode_features(new, schema, "rows to price")
    assert encoded[:, 5:8].tolist() == [[0, 0, 0], [0, 0, 1], [0, 0, 0]]
    assert "column 'colour': 2 row(s) with categories not seen in training" in caplog.text


def test_the_served_model_encodes_rows_as_training_does(tmp_path):
    """The served model may not import scikit-learn: its pandas encoding must give the same
    columns and values as the OneHotEncoder and SimpleImputer statistics of training."""
    table = as_read(
        make_table(
            ["a", "b", "c"],
            text={"colour": ["red", "green", "blue"]},
            missing={"x1": 10, "colour": 5},
        ),
        tmp_path,
    )
    params = DataProcessingParams(impute=True)
    validated, schema = derive_schema(table, ColumnsParams(target="label"), params)
    assert schema.imputation["x1"] == pytest.approx(validated["x1"].head(240).median(), abs=1)
    rows = table.drop(columns="label").copy()
    rows.loc[:4, "colour"] = "purple"  # unseen
    config = {**schema.model_dump(mode="json")}
    served = table_inputs(rows, config)
    assert list(served.columns) == schema.inputs
    np.testing.assert_array_equal(served.to_numpy(), encode_features(rows, schema, "rows"))


def test_too_many_categories_and_gaps_are_named_at_the_first_node(tmp_path):
    table = make_table(["a", "b"], text={"comment": [f"note {i}" for i in range(80)]})
    with pytest.raises(
        DataValidationError,
        match=r"text column 'comment' has \d+ distinct values, more than data_processing.max_categories \(50\).*Drop it.*or raise",
    ):
        derive_schema(table, ColumnsParams(target="label"), DataProcessingParams())
    derive_schema(table, ColumnsParams(target="label"), DataProcessingParams(max_categories=80))

    gaps = make_table(["a", "b"], missing={"x2": 3})
    with pytest.raises(
        DataValidationError,
        match=r"column 'x2': 3 row\(s\) with missing values \(rows \d+, \d+, \d+\).*data_processing.impute",
    ):
        derive_schema(gaps, ColumnsParams(target="label"), DataProcessingParams())


def test_listed_classes_fix_the_order_and_listed_features_select_columns(tmp_path):
    table = as_read(make_table(["lo", "mid", "hi"], id_column="ID"), tmp_path)
    columns = ColumnsParams(target="label", classes=["lo", "mid", "hi"], features=["x3", "x1"])
    validated, schema = derive_schema(table, columns, DataProcessingParams())
    assert schema.classes == ["lo", "mid", "hi"]
    assert schema.codes(["hi", "lo"], "x").tolist() == [2, 0]
    assert schema.features == schema.inputs == ["x3", "x1"]
    assert schema.id == "ID"  # recognised by its name, in any case
    assert list(validated.columns) == ["x3", "x1", "label"]


# ---- contradictions: named at the first node, nothing trained, earlier outputs intact ------

EARLIER = (
    "data/02_intermediate/validated_phone_prices.parquet",
    "data/05_model_input/fit_set.parquet",
    "data/06_models/table_schema.json",
    "data/06_models/phone_price_model.pt",
)


def configure(project: Path, table: pd.DataFrame, **catalog: str) -> None:
    """As a user does: the catalog entries point at their CSVs (conf/local/catalog.yml)."""
    entries = {"phone_prices": "mine.csv", **catalog}
    write_csv(table, project / "data/01_raw/mine.csv")
    (project / "conf/local/catalog.yml").write_text(
        yaml.safe_dump(
            {
                name: {"type": "pandas.CSVDataset", "filepath": f"data/01_raw/{file}"}
                for name, file in entries.items()
            }
        )
    )


def local_parameters(project: Path, columns: dict[str, Any], **blocks: Any) -> None:
    """conf/local/parameters.yml: the label column (and what a case adds)."""
    (project / "conf/local/parameters.yml").write_text(
        yaml.safe_dump({"columns": {"target": "label", **columns}, **blocks})
    )


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> Any:
    """One MLflow store for this module's runs (creating one costs seconds)."""
    folder = tmp_path_factory.mktemp("store")
    uri = f"sqlite:///{folder / 'mlflow.db'}"
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", uri)
        yield uri
    if mlflow.active_run() is not None:
        mlflow.end_run()


@pytest.fixture(scope="module")
def own_project(store, tmp_path_factory) -> Path:
    """One project copy for the contradictions: a 3-class table with string labels."""
    project = copy_project(tmp_path_factory.mktemp("own"))
    configure(project, make_table(["lo", "mid", "hi"], n_rows=240))
    return project


@pytest.fixture
def earlier(own_project: Path) -> Path:
    for path in EARLIER:
        (own_project / path).parent.mkdir(parents=True, exist_ok=True)
        (own_project / path).write_bytes(b"earlier run's output")
    return own_project


CONTRADICTIONS = {
    "absent feature": (
        {"columns": {"features": ["x0", "colour"]}},
        r"columns.features lists column\(s\) \['colour'\] that the table does not have",
    ),
    "absent class": (
        {"columns": {"classes": ["lo", "mid", "hi", "top"]}},
        r"columns.classes lists class\(es\) \['top'\] that do not occur in column 'label'",
    ),
    "class too small to stratify": (
        {"data_processing": {"min_rows_per_class": 100}},
        r"class\(es\) \{.*\} have fewer than 100 rows \(data_processing.min_rows_per_class\)",
    ),
    "input width": (
        {"model": {"hidden_dims": [8], "input_dim": 20}},
        r"model.input_dim: is 20 but the table 'phone price table' gives 5 \(5 numeric input",
    ),
    "class count": (
        {"model": {"hidden_dims": [8], "n_classes": 4}},
        r"model.n_classes: is 4 but the table 'phone price table' gives 3 \(classes \['hi', 'lo'",
    ),
    "label listed as a feature": (
        {"columns": {"features": ["x0", "label"]}},
        r"columns.features lists the label column 'label' \(columns.target\)",
    ),
}


@pytest.mark.parametrize("case", list(CONTRADICTIONS))
def test_a_contradiction_stops_the_run_at_its_first_node(case, earlier):
    changes, message = CONTRADICTIONS[case]
    local_parameters(
        earlier, changes.get("columns", {}), **{k: v for k, v in changes.items() if k != "columns"}
    )
    with pytest.raises(Exception, match=message) as caught:
        run_kedro(earlier, params={"training.progress": False})
    # The first node stopped the run (InputFileHooks names the node and the file it read).
    assert "node 'validate_phone_prices' read 'phone_prices'" in " ".join(caught.value.__notes__)
    for path in EARLIER:
        assert (earlier / path).read_bytes() == b"earlier run's output", path
    assert not _training_runs()


def test_a_training_run_with_a_declared_width_stops_before_it_writes(own_project):
    """Only training: the schema on disk is the table's (data_processing wrote it), the
    parameters declare another class count."""
    local_parameters(own_project, {})
    run_kedro(own_project, "data_processing")
    before = {p: (own_project / p).read_bytes() for p in EARLIER[:3]}
    local_parameters(own_project, {}, model={"hidden_dims": [8], "n_classes": 2})
    with pytest.raises(
        Exception, match=r"model.n_classes: is 2 but the table 'phone price table' gives 3"
    ):
        run_kedro(own_project, "training", params={"training.progress": False})
    assert before == {p: (own_project / p).read_bytes() for p in EARLIER[:3]}
    assert not _training_runs()


def _training_runs() -> list[Any]:
    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    runs = client.search_runs([experiment.experiment_id]) if experiment else []
    return [run for run in runs if "train_loss" in run.data.metrics]


# ---- the whole chain, as a user runs it --------------------------------------------------

CHAINS: dict[str, dict[str, Any]] = {
    # Two string classes, a text column, gaps in a number and a text column, an "ID" column.
    "strings, text and gaps": {
        "table": {
            "labels": ["benign", "malignant"],
            "text": {"colour": ["red", "green", "blue"]},
            "missing": {"x1": 6, "colour": 4},
            "id_column": "ID",
            "n_rows": 400,
        },
        "data_processing": {"impute": True, "table_name": "clinic"},
    },
    # Ten classes numbered 1…10 and 64 features; no id column anywhere.
    "ten classes from 1, 64 features": {
        "table": {"labels": list(range(1, 11)), "n_features": 64, "n_rows": 600},
        "data_processing": {"table_name": "sixty-four"},
    },
}
# A short study: 2 trials of 2 folds on one worker; the tuning block itself is the shipped one.
SHORT_STUDY = {
    "tuning.n_trials": 2,
    "tuning.timeout": None,
    "tuning.folds": 2,
    "tuning.ensemble_seeds": 1,
    "tuning.dask.n_workers": 1,
    "tuning.dask.dashboard_address": None,
    "tuning.baselines.svc_rbf.n_trials": 2,
}


@pytest.mark.parametrize("case", list(CHAINS))
def test_a_table_runs_the_whole_chain_by_configuration_alone(case, store, tmp_path):
    chain = CHAINS[case]
    table = make_table(**chain["table"])
    labels = chain["table"]["labels"]
    project = copy_project(tmp_path)
    to_price = table.drop(columns="label").sample(30, random_state=0)
    if "colour" in to_price:
        to_price.iloc[:3, to_price.columns.get_loc("colour")] = "purple"  # unseen in training
    configure(project, table, phones_to_price="to_price.csv")
    write_csv(to_price, project / "data/01_raw/to_price.csv")
    local_parameters(project, {}, data_processing=chain["data_processing"])
    fast = {"training.epochs": 5, "training.progress": False}

    run_kedro(project, params=fast)
    schema = json.loads((project / "data/06_models/table_schema.json").read_text())
    assert schema["classes"] == sorted(labels)
    metrics = json.loads((project / "data/08_reporting/metrics.json").read_text())
    assert metrics["test_accuracy"] > 1.5 / len(labels)  # learned something
    report = json.loads((project / "data/08_reporting/classification_report.json").read_text())
    assert {str(label) for label in labels} <= set(report)
    run = _last_run("__default__")
    assert run.data.params["columns.target"] == "label"
    assert run.data.params["columns.classes"] == str(sorted(labels))
    assert run.data.params["model.input_dim"] == str(len(schema["inputs"]))

    run_kedro(project, "inference")
    priced = pd.read_csv(project / "data/07_model_output/price_predictions.csv")
    id_column = "ID" if "ID" in table else "id"
    expected_ids = to_price["ID"] if "ID" in table else range(len(to_price))
    assert priced[id_column].tolist() == list(expected_ids)
    assert set(priced["label"]) <= set(labels)

    # The served model: raw rows in, the table's own labels out, as the batch pipeline.
    # The store is MLFLOW_TRACKING_URI's (the fixture's): mlflow.set_tracking_uri(None)
    # would unset that variable, and later runs would write to the checkout's store.
    served_info = json.loads((project / "data/06_models/served_model.json").read_text())
    version = served_info["registered_model_version"]
    model = mlflow.pyfunc.load_model(f"models:/phone_price_classifier/{version}")
    # With imputation on, integer columns are declared double (they may hold NaN).
    served = model.predict(to_price.astype(input_types(model)))
    assert served["label"].tolist() == priced["label"].tolist()
    probabilities = [f"probability_{label}" for label in sorted(labels)]
    np.testing.assert_allclose(served[probabilities], priced[probabilities], rtol=1e-5, atol=1e-7)

    # The search space's epochs start at 20: the default configuration is its first trial.
    run_kedro(project, "tuning", params={**fast, **SHORT_STUDY, "training.epochs": 20})
    tuned = json.loads((project / "data/08_reporting/tuning_metrics.json").read_text())
    assert 1 / len(labels) < tuned["tuned"]["test_accuracy"] <= 1
    assert set(tuned["baselines"]) == {
        "logistic_regression", "svc_linear", "linear_svc_crammer_singer", "svc_rbf"
    }  # fmt: skip


def input_types(model: Any) -> dict[str, str]:
    """The served model's declared numeric input types, as pandas types."""
    kinds = {"double": "float64", "long": "int64"}
    return {
        spec.name: kinds[spec.type.name]
        for spec in model.metadata.get_input_schema().inputs
        if getattr(spec.type, "name", None) in kinds
    }


def _last_run(name: str) -> Any:
    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    runs = client.search_runs(
        [experiment.experiment_id],
        filter_string=f"attributes.run_name = '{name}'",
        order_by=["attributes.start_time DESC"],
    )
    return runs[0]
