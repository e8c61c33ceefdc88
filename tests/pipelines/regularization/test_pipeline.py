"""regularization end to end: a real KedroSession against a temporary MLflow store."""

from __future__ import annotations

import json

import pandas as pd
import yaml
from kedro.config import OmegaConfigLoader

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.pipelines.regularization.nodes import plan_variants
from neural_net_lab.pipelines.regularization.pipeline import EXPERIMENT, SHIPPED_VARIANTS
from neural_net_lab.variants import variant_names
from tests.conftest import FAST_TRAINING, PROJECT_ROOT, mlflow_client, run_kedro


def test_shipped_variants_are_the_lessons_settings():
    params = OmegaConfigLoader(str(PROJECT_ROOT / "conf"), base_env="base", default_run_env="base")[
        "parameters"
    ]
    model = ModelParams.model_validate(params["model"])
    plan = plan_variants(
        model, TrainingParams.model_validate(params["training"]), params["regularization"]
    )
    assert plan == {
        "none": {},
        "l1": {"training.l1_lambda": 0.001},
        "l2": {"training.optimizer.weight_decay": 0.001},
        "dropout": {"model.dropout": 0.5},
        "augmentation": {
            "training.augmentation.name": "gaussian_noise",
            "training.augmentation.std": 0.1,
        },
        "dropout_l2": {"model.dropout": 0.5, "training.optimizer.weight_decay": 0.001},
    }
    # The pipeline's nodes are these blocks; the fallback for a run without a project matches them.
    assert variant_names(EXPERIMENT, SHIPPED_VARIANTS, PROJECT_ROOT) == list(plan)
    assert SHIPPED_VARIANTS == tuple(plan)


def test_a_parameter_block_is_a_variant_run_as_a_child_run(project_copy, monkeypatch):
    # Only the parameters change: a baseline and a combination the code has never seen.
    params_file = project_copy / "conf/base/parameters_regularization.yml"
    params = yaml.safe_load(params_file.read_text())
    params["regularization"] = {
        "none": {"name": "none"},
        "l1_noise": {
            "name": "l1_noise",
            "training": {
                "l1_lambda": 0.001,
                "augmentation": {"name": "gaussian_noise", "std": 0.1},
            },
        },
    }
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    monkeypatch.chdir(project_copy)  # Kedro finds the project, and its variants, from here
    epochs = FAST_TRAINING["training.epochs"]

    # The copy holds only raw data: the split is made within the same run.
    run_kedro(project_copy, "regularization", FAST_TRAINING)

    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    runs = client.search_runs([experiment.experiment_id])
    parent = next(r for r in runs if "mlflow.parentRunId" not in r.data.tags)
    children = {
        r.info.run_name: r
        for r in runs
        if r.data.tags.get("mlflow.parentRunId") == parent.info.run_id
    }
    assert set(children) == {"none", "l1_noise"}
    child = children["l1_noise"]
    assert child.data.params["training.l1_lambda"] == "0.001"
    assert child.data.params["training.augmentation.name"] == "gaussian_noise"
    assert child.data.params["training.augmentation.std"] == "0.1"
    assert child.data.params["training.epochs"] == str(epochs)
    assert children["none"].data.params["training.l1_lambda"] == "0.0"
    for key in ("train_loss", "val_loss", "val_accuracy"):
        steps = [m.step for m in client.get_metric_history(child.info.run_id, key)]
        assert sorted(steps) == list(range(epochs)), key

    artifacts = {a.path for a in client.list_artifacts(parent.info.run_id)}
    assert {
        "regularization_comparison.csv",
        "regularization_report.md",
        "regularization_curves.png",
        "regularization_dropout_demo.json",
    } <= artifacts
    assert "l1_noise.near_zero_weight_share" in parent.data.metrics

    reporting = project_copy / "data/08_reporting"
    table = pd.read_csv(reporting / "regularization_comparison.csv")
    assert table["variant"].tolist() == ["none", "l1_noise"]
    for row in table.itertuples():
        assert row.test_accuracy == children[row.variant].data.metrics["test_accuracy"]
        assert row.val_accuracy == children[row.variant].data.metrics["val_accuracy"]
    assert table["selected"].sum() == 1
    assert table.loc[table["selected"], "val_accuracy"].item() == table["val_accuracy"].max()
    picked = table.loc[table["selected"], "variant"].item()
    assert f"`{picked}`" in (reporting / "regularization_report.md").read_text()
    assert json.loads((reporting / "regularization_dropout_demo.json").read_text())[
        "eval_mode_is_identity"
    ]
    assert (reporting / "regularization_curves.png").stat().st_size > 0
