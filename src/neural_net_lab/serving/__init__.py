"""The served phone-price model: scaled networks + label handling as one MLflow pyfunc model.

``log_phone_price_classifier`` turns an ``engine.ensemble.Ensemble`` (each member a scaler and
a network; the default model is one member with the training split's scaler, a tuned fold
ensemble has k or k × m) into the artifacts of ``phone_price_classifier.py`` (a
self-contained "model from code") and logs and registers it in the active MLflow run.
It imports the engine, phone_table and datasets; the training, tuning and inference pipelines
import it.
"""

from __future__ import annotations

import json
import logging
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path
from typing import Any, ClassVar

import mlflow
import numpy as np
import pandas as pd
import torch
from mlflow.models import ModelSignature, infer_signature
from mlflow.types.schema import AnyType, ColSpec, Schema
from pydantic import Field
from torch import nn

from neural_net_lab.datasets.tuned_parameters import TunedParams
from neural_net_lab.engine.config import Block, ColumnsParams, ModelParams, PositiveInt
from neural_net_lab.engine.ensemble import Ensemble, build_ensemble, load_ensemble, state_of
from neural_net_lab.engine.model import mlp_layout
from neural_net_lab.phone_table import scaler_arrays

logger = logging.getLogger(__name__)
MODEL_CODE = Path(__file__).with_name("phone_price_classifier.py")


class ServedModelParams(Block):
    """How the trained network is logged as one MLflow model (``served_model``)."""

    block_path: ClassVar[str] = "served_model"

    name: str = Field(min_length=1)
    registered_model_name: str | None  # None: log, do not register
    example_rows: PositiveInt


def network_layers(model: nn.Sequential) -> tuple[list[dict[str, torch.Tensor]], float]:
    """Each linear layer's weight and bias, and the LeakyReLU slope between them.

    The served model rebuilds exactly Linear → LeakyReLU → … → Linear (dropout is the
    identity when predicting), so the network's layout is read as the engine reads it
    (``engine.model.mlp_layout``), and a network with any other layer is refused there, by name.
    """
    layout = mlp_layout(model)
    layers = [
        {"weight": layer.weight.detach().clone(), "bias": layer.bias.detach().clone()}
        for layer in layout.linears
    ]
    return layers, layout.negative_slope


def scaled_network(
    scaler: Mapping[str, Any],
    state_dict: Mapping[str, torch.Tensor],
    model: ModelParams,
    columns: ColumnsParams,
) -> Ensemble:
    """One network with the persisted scaler (checked against ``columns.features``): the
    ensemble of one that the default model and a refit are served as."""
    mean, scale = scaler_arrays(scaler, columns.features)
    return build_ensemble([(mean, scale, state_dict)], model)


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
    ensemble: Ensemble,
    example: pd.DataFrame,
    columns: ColumnsParams,
    *,
    name: str,
    registered_model_name: str | None,
) -> mlflow.models.model.ModelInfo:
    """Logs the served model to the active MLflow run and registers it under the given name."""
    members = [network_layers(member.network) for member in ensemble]
    slopes = {slope for _, slope in members}
    if len(slopes) > 1:
        raise ValueError(f"the served model needs one LeakyReLU slope, got {sorted(slopes)}")
    config = {
        "features": list(columns.features),
        "id": columns.id,
        "target": columns.target,
        "classes": list(columns.classes),
        "negative_slope": slopes.pop(),
        "scalers": [
            {"mean": member.mean.tolist(), "scale": member.scale.tolist()} for member in ensemble
        ],
    }
    outputs = {layers[-1]["weight"].shape[0] for layers, _ in members}
    if outputs != {len(config["classes"])}:
        raise ValueError(
            f"the network has {sorted(outputs)} outputs but columns.classes "
            f"lists {len(config['classes'])} classes"
        )
    with tempfile.TemporaryDirectory() as directory:
        config_path, network_path = Path(directory, "config.json"), Path(directory, "network.pt")
        config_path.write_text(json.dumps(config, indent=2))
        torch.save([layers for layers, _ in members], network_path)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={"config": str(config_path), "network": str(network_path)},
            signature=signature(example, columns),
            input_example=example[list(columns.features)],
            pip_requirements=requirements(),
            registered_model_name=registered_model_name,
        )


def log_served(
    ensemble: Ensemble,
    raw_phones: pd.DataFrame,
    columns: ColumnsParams,
    served: ServedModelParams,
    *,
    prefix: str = "",
    alias: str | None = None,
) -> dict[str, Any]:
    """Logs ``ensemble`` as the served model ``<prefix><served.name>``, registers it (as
    ``alias`` too) and returns what was logged, for the catalog; skipped without a run."""
    if mlflow.active_run() is None:
        logger.info("No active MLflow run: %s%s is not logged", prefix, served.name)
        return {"logged": False}
    name = served.registered_model_name
    info = log_phone_price_classifier(
        ensemble,
        raw_phones.head(served.example_rows),
        columns,
        name=f"{prefix}{served.name}",
        registered_model_name=name,
    )
    if name and alias:
        mlflow.MlflowClient().set_registered_model_alias(name, alias, info.registered_model_version)
    return {
        "logged": True,
        "run_id": info.run_id,
        "model_uri": f"models:/{name}@{alias}" if name and alias else info.model_uri,
        "registered_model_name": name,
        "registered_model_version": info.registered_model_version,
    }


def tuned_classifier(
    tuned: TunedParams,
    ensemble: Ensemble | Mapping[str, torch.Tensor],
    refit: nn.Module | Mapping[str, torch.Tensor],
    scaler: Mapping[str, Any],
    columns: ColumnsParams,
) -> Ensemble:
    """What the tuning pipeline serves, as ``tuned_parameters.yml``'s ``final`` says: the
    chosen trial's fold networks, each with its fold's scaler (``ensemble``), or the network
    refit on the whole training split with its scaler (``refit``; also what a file written
    before fold ensembles holds). The catalog hands state dicts; modules are taken as well."""
    if tuned.final == "ensemble":
        return load_ensemble(state_of(ensemble), tuned.model)
    return scaled_network(scaler, state_of(refit), tuned.model, columns)
