"""transfer end to end in real Kedro sessions against a temporary MLflow store: it refuses to
start without the trained model, then runs every strategy as a child run of its Kedro run."""

from __future__ import annotations

import pandas as pd
import pytest
from kedro_datasets_experimental.pytorch import PyTorchDataset

from neural_net_lab.datasets.table_schema import TableSchemaDataset
from neural_net_lab.engine.config import ModelParams
from neural_net_lab.engine.fit import split_accuracy
from neural_net_lab.engine.model import load_mlp
from neural_net_lab.hooks import MissingInputError
from tests.conftest import FAST_TRAINING, mlflow_client, run_kedro

TINY_TRANSFER = {
    **FAST_TRAINING,
    "transfer.training.epochs": 2,
    "transfer.learning_curve.sizes": [30],
    "transfer.learning_curve.repeats": 1,
}
MODEL = ModelParams(input_dim=20, hidden_dims=[128, 256], n_classes=3)


def _runs(client, name=None):
    experiment = client.get_experiment_by_name("neural_net_lab")
    query = f"attributes.run_name = '{name}'" if name else ""
    return client.search_runs([experiment.experiment_id], filter_string=query)


def test_transfer_asks_for_the_trained_model_then_runs_every_strategy(project_copy):
    run_kedro(project_copy, "data_processing")
    with pytest.raises(MissingInputError) as error:
        run_kedro(project_copy, "transfer", TINY_TRANSFER)
    message = str(error.value)
    assert "'phone_price_model'" in message and "phone_price_model.pt" in message
    assert "`kedro run --pipelines training` first (or the default `kedro run`" in message
    client = mlflow_client()
    assert not _runs(client, "transfer")  # stopped before any node or MLflow run started

    run_kedro(project_copy, "training", FAST_TRAINING)
    run_kedro(project_copy, "transfer", TINY_TRANSFER)

    (parent,) = _runs(client, "transfer")
    children = {
        r.info.run_name: r
        for r in _runs(client)
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert set(children) == {"freeze", "finetune", "scratch"}
    finetune = children["finetune"]
    assert finetune.data.params["strategy.hidden_lr_factor"] == "0.1"
    assert finetune.data.params["model.n_classes"] == "3"
    assert finetune.data.params["training.epochs"] == "2"
    assert children["freeze"].data.params["strategy.freeze"] == "True"
    curve = client.get_metric_history(finetune.info.run_id, "curve_test_accuracy")
    assert sorted(m.step for m in curve) == [30, 300]
    assert len(client.get_metric_history(finetune.info.run_id, "train_loss")) == 2
    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {
        "transfer_learning_curve.csv",
        "transfer_learning_curve.md",
        "transfer_learning_curve.png",
    } <= artifacts

    reporting = project_copy / "data/08_reporting"
    table = pd.read_csv(reporting / "transfer_learning_curve.csv")
    assert sorted(zip(table["strategy"], table["rows"])) == sorted(
        (s, n) for s in ("finetune", "freeze", "logistic_regression", "scratch") for n in (30, 300)
    )
    assert table["test_accuracy"].between(0, 1).all() and (table["training_seconds"] > 0).all()
    # Each child run is open while its strategy trains (one fit per curve point here).
    for name, child in children.items():
        fits_ms = table.loc[table["strategy"] == name, "training_seconds"].sum() * 1000
        assert child.info.status == "FINISHED"
        assert child.info.end_time - child.info.start_time >= fits_ms - 1, name
    assert "| finetune" in (reporting / "transfer_learning_curve.md").read_text()

    # The saved fine-tuned model is the one the child run scored on the new market's test rows.
    state = PyTorchDataset(
        filepath=str(project_copy / "data/06_models/transfer_finetune_model.pt")
    ).load()
    test_set = pd.read_parquet(project_copy / "data/05_model_input/new_market_test_set.parquet")
    # The new market's inputs and label are the source table's (its run's schema).
    schema = TableSchemaDataset(filepath=str(project_copy / "data/06_models/table_schema.json"))
    accuracy = split_accuracy(load_mlp(state, MODEL), test_set, schema.load())
    assert accuracy == pytest.approx(finetune.data.metrics["test_accuracy"])
