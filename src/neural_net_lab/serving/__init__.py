"""The served phone-price model: scaler + network + label handling as one MLflow pyfunc model.

``log_phone_price_classifier`` turns the persisted scaler parameters and the trained network
into the artifacts of ``phone_price_classifier.py`` (a self-contained "model from code") and
logs and registers it in the active MLflow run.
"""

from __future__ import annotations

import json
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema
from torch import nn

from neural_net_lab.engine.config import ColumnsParams
from neural_net_lab.pipelines.data_processing.nodes import scaler_arrays

MODEL_CODE = Path(__file__).with_name("phone_price_classifier.py")


def network_layers(model: nn.Sequential) -> tuple[list[dict[str, torch.Tensor]], float]:
    """Each linear layer's weight and bias, and the LeakyReLU slope between them.

    The served model rebuilds exactly Linear → LeakyReLU → … → Linear, so any other layer type
    is refused rather than silently dropped (dropout is the identity when predicting).
    """
    others = sorted(
        {
            type(m).__name__
            for m in model
            if not isinstance(m, (nn.Linear, nn.LeakyReLU, nn.Dropout))
        }
    )
    if others:
        raise ValueError(f"the served model supports Linear/LeakyReLU/Dropout layers, got {others}")
    slopes = {m.negative_slope for m in model if isinstance(m, nn.LeakyReLU)}
    if len(slopes) > 1:
        raise ValueError(f"the served model needs one LeakyReLU slope, got {sorted(slopes)}")
    layers = [
        {"weight": m.weight.detach().clone(), "bias": m.bias.detach().clone()}
        for m in model
        if isinstance(m, nn.Linear)
    ]
    return layers, slopes.pop() if slopes else 0.0  # one linear layer: no activation to set


def scaler_config(scaler: Mapping[str, Any], features: list[str]) -> dict[str, list[float]]:
    """The persisted scaler's mean and scale in the order of ``features`` (checked)."""
    mean, scale = scaler_arrays(scaler, features)
    return {"mean": mean.tolist(), "scale": scale.tolist()}


def signature(example: pd.DataFrame, columns: ColumnsParams) -> ModelSignature:
    """Raw features typed like the training table (an optional id is echoed back) in;
    predicted class and one probability per class out."""
    with warnings.catch_warnings():
        # MLflow warns that integer columns cannot hold missing values; this model refuses
        # missing values in any column, so the training table's integer types are right.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        inputs = infer_signature(example[list(columns.features)]).inputs.inputs
    optional_id = ColSpec(AnyType(), columns.id, required=False)
    outputs = [ColSpec("long", columns.target)]
    outputs += [ColSpec("double", f"probability_{label}") for label in columns.classes]
    return ModelSignature(Schema([*inputs, optional_id]), Schema([optional_id, *outputs]))


def requirements() -> list[str]:
    """Pinned to this environment; listing them skips MLflow's slow requirement inference."""
    return [
        f"mlflow=={mlflow.__version__}",
        f"torch=={torch.__version__.split('+')[0]}",
        f"numpy=={np.__version__}",
        f"pandas=={pd.__version__}",
    ]


def log_phone_price_classifier(
    scaler: Mapping[str, Any],
    model: nn.Sequential,
    example: pd.DataFrame,
    columns: ColumnsParams,
    *,
    name: str,
    registered_model_name: str | None,
) -> mlflow.models.model.ModelInfo:
    """Logs the served model to the active MLflow run and registers it under the given name."""
    layers, slope = network_layers(model)
    config = {
        "features": list(columns.features),
        "id": columns.id,
        "target": columns.target,
        "classes": list(columns.classes),
        "negative_slope": slope,
        "scaler": scaler_config(scaler, columns.features),
    }
    if layers[-1]["weight"].shape[0] != len(config["classes"]):
        raise ValueError(
            f"the network has {layers[-1]['weight'].shape[0]} outputs but columns.classes "
            f"lists {len(config['classes'])} classes"
        )
    with tempfile.TemporaryDirectory() as directory:
        config_path, network_path = Path(directory, "config.json"), Path(directory, "network.pt")
        config_path.write_text(json.dumps(config, indent=2))
        torch.save(layers, network_path)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={"config": str(config_path), "network": str(network_path)},
            signature=signature(example, columns),
            input_example=example[list(columns.features)],
            pip_requirements=requirements(),
            registered_model_name=registered_model_name,
        )
