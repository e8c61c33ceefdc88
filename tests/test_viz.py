"""kedro viz build: every registered pipeline and its key datasets are in the graph."""

from __future__ import annotations

import json
import subprocess
import sys

from kedro.framework.project import pipelines
from kedro.framework.startup import bootstrap_project

# One or more datasets a user looks for in each pipeline's graph.
KEY_DATASETS = {
    "data_processing": {"phone_prices", "scaler", "train_set", "test_set"},
    "training": {"phone_price_model", "training_history"},
    "evaluation": {
        "metrics",
        "confusion_matrix_plot",
        "feature_importance_plot",
        "calibration_plot",
    },
    "synthetic_data": {"phone_prices_synthetic"},
    "backprop": {"backprop_report"},
    "optimizers": {"optimizers_comparison", "optimizers_loss_curves"},
    "regularization": {"regularization.comparison"},
    "transfer": {"transfer_learning_curve", "phone_prices_new_market"},
    "inference": {"phones_to_price", "price_predictions"},
    "tuning": {
        "tuning_trials",
        "tuned_phone_price_model",
        "tuned_parameters",
        "tuning_repeated_cv",
        "tuning_comparison_plot",
        "tuned_feature_importance_plot",
    },
}


def test_viz_build_shows_every_pipeline_with_its_key_datasets(project_copy):
    bootstrap_project(project_copy)
    registered = set(pipelines) - {"__default__"}
    assert registered == set(KEY_DATASETS), "a pipeline was added or removed: update KEY_DATASETS"

    subprocess.run([sys.executable, "-m", "kedro", "viz", "build"], cwd=project_copy, check=True,
                   capture_output=True, timeout=300)  # fmt: skip
    api = project_copy / "build" / "api"
    main = json.loads((api / "main").read_text())
    assert {p["id"] for p in main["pipelines"]} == registered | {"__default__"}
    assert {
        "raw",
        "intermediate",
        "primary",
        "model_input",
        "models",
        "model_output",
        "reporting",
    } <= set(main["layers"])
    for name, datasets in KEY_DATASETS.items():
        graph = json.loads((api / "pipelines" / name).read_text())
        names = {node["name"] for node in graph["nodes"] if node["type"] == "data"}
        assert datasets <= names, f"{name}: missing {datasets - names}"
