"""The served model: the table's encoding, scaled networks and the original labels as one
MLflow pyfunc model (registered as ``phone_price_classifier`` whatever the table).

``log_phone_price_classifier`` turns an ``engine.ensemble.Ensemble`` (each member a scaler and
a network; the default model is one member with the training split's scaler, a tuned fold
ensemble has k or k × m) and the table's schema (features, fill values, one-hot categories,
classes) into the artifacts of ``phone_price_classifier.py`` (a self-contained "model from
code") and logs and registers it in the active MLflow run.
It imports the engine, table and datasets; the training, tuning and inference pipelines
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
from mlflow.types.schema import AnyType, ColSpec, DataType, Schema
from pydantic import Field
from torch import nn

from neural_net_lab.datasets.tuned_parameters import TunedParams
from neural_net_lab.engine.config import Block, ModelParams, PositiveInt
from neural_net_lab.engine.ensemble import Ensemble, build_ensemble, load_ensemble, state_of
from neural_net_lab.engine.model import mlp_layout
from neural_net_lab.table import TableSchema, scaler_arrays

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
    schema: TableSchema,
) -> Ensemble:
    """One network with the persisted scaler (checked against the schema's inputs): the
    ensemble of one that the default model and a refit are served as. ``model`` is the
    block with its widths derived (``schema.network``)."""
    mean, scale = scaler_arrays(scaler, schema.inputs)
    return build_ensemble([(mean, scale, state_dict)], model)


def _label_type(classes: list[Any]) -> DataType:
    """The MLflow type of the label column: the classes' own type (long for the phone
    table's price ranges, string for names, boolean for yes/no)."""
    kinds = {type(label) for label in classes}
    if kinds == {bool}:
        return DataType.boolean
    if kinds == {int}:
        return DataType.long
    if kinds <= {int, float}:
        return DataType.double
    return DataType.string


def input_example(rows: pd.DataFrame, schema: TableSchema) -> pd.DataFrame:
    """Raw rows' feature columns, typed as the served model declares them: like the training
    table, except that with imputation on an integer column is double (missing cells are
    filled by the model, so MLflow must let a NaN through, and an integer cannot be one)."""
    features = rows[list(schema.features)]
    if not schema.imputation:
        return features
    numeric = [c for c in schema.numeric if pd.api.types.is_integer_dtype(features[c])]
    return features.astype(dict.fromkeys(numeric, "float64"))


def signature(example: pd.DataFrame, schema: TableSchema) -> ModelSignature:
    """Raw features typed like ``input_example`` (an optional id is echoed back) in;
    predicted class (the original labels) and one probability per class out."""
    features = input_example(example, schema)
    with warnings.catch_warnings():
        # MLflow warns that integer columns cannot hold missing values; without imputation
        # this model refuses missing values in any column, so integer types are right.
        warnings.filterwarnings("ignore", message="Hint: Inferred schema contains integer")
        inputs = infer_signature(features).inputs.inputs
    optional_id = ColSpec(AnyType(), schema.id, required=False)
    outputs = [ColSpec(_label_type(schema.classes), schema.target)]
    outputs += [ColSpec("double", name) for name in schema.probability_columns()]
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
    schema: TableSchema,
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
        "features": list(schema.features),
        "categories": schema.categories,
        "imputation": schema.imputation,
        "inputs": list(schema.inputs),
        "id": schema.id,
        "target": schema.target,
        "classes": list(schema.classes),
        "negative_slope": slopes.pop(),
        "scalers": [
            {"mean": member.mean.tolist(), "scale": member.scale.tolist()} for member in ensemble
        ],
    }
    outputs = {layers[-1]["weight"].shape[0] for layers, _ in members}
    if outputs != {len(config["classes"])}:
        raise ValueError(
            f"the network has {sorted(outputs)} outputs but the table schema has "
            f"{len(config['classes'])} classes {config['classes']}"
        )
    with tempfile.TemporaryDirectory() as directory:
        config_path, network_path = Path(directory, "config.json"), Path(directory, "network.pt")
        config_path.write_text(json.dumps(config, indent=2))
        torch.save([layers for layers, _ in members], network_path)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={"config": str(config_path), "network": str(network_path)},
            signature=signature(example, schema),
            input_example=input_example(example, schema),
            pip_requirements=requirements(),
            registered_model_name=registered_model_name,
        )


def log_served(
    ensemble: Ensemble,
    raw_table: pd.DataFrame,
    schema: TableSchema,
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
        raw_table.head(served.example_rows),
        schema,
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
    schema: TableSchema,
) -> Ensemble:
    """What the tuning pipeline serves, as ``tuned_parameters.yml``'s ``final`` says: the
    chosen trial's fold networks, each with its fold's scaler (``ensemble``), or the network
    refit on the whole training split with its scaler (``refit``; also what a file written
    before fold ensembles holds). The catalog hands state dicts; modules are taken as well.
    The tuned widths are checked against the table's (a study made on another table)."""
    model = schema.network(tuned.model, "tuned_parameters.yml: model")
    if tuned.final == "ensemble":
        return load_ensemble(state_of(ensemble), model)
    return scaled_network(scaler, state_of(refit), model, schema)
