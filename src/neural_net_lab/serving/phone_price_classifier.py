"""The served classifier: an MLflow pyfunc model logged as code.

MLflow copies this file into the logged model and runs it when the model is loaded, so it
imports only mlflow, numpy, pandas and torch, never the project: the model loads and serves
wherever those are installed. Its two artifacts are written by ``neural_net_lab.serving``:
``config`` (JSON: the table's feature columns, the fill value of each column when imputation
is on, each text column's categories, the network's input columns, each member's scaler mean
and scale, the label column and the original classes, the LeakyReLU slope) and ``network``
(per member, each linear layer's weight and bias, read with ``weights_only=True``).

A row becomes the network's inputs as ``neural_net_lab.table.encoding`` makes them in
training: missing cells filled, text columns one-hot encoded (here with pandas, since this
file may not import scikit-learn; a test holds both to the same columns; an unseen category
is all zeros, counted and logged), numbers as they are. A member is one network with its own
scaler. The prediction is the mean of the members' softmax probabilities: the default model
is one member (the training split's scaler), a tuned fold ensemble one per fold network
(each with its fold's scaler). This is ``engine.ensemble.Ensemble.probabilities``, written
again here because this file may not import the project.
"""

from __future__ import annotations

import json
import logging
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd
import torch
from torch import nn


def build_network(layers: list[dict[str, torch.Tensor]], negative_slope: float) -> nn.Sequential:
    """Linear layers with LeakyReLU between them; dropout is the identity at prediction time."""
    modules: list[nn.Module] = []
    for i, layer in enumerate(layers):
        out_features, in_features = layer["weight"].shape
        linear = nn.Linear(in_features, out_features)
        linear.load_state_dict(layer)
        modules.append(linear)
        if i < len(layers) - 1:
            modules.append(nn.LeakyReLU(negative_slope))
    return nn.Sequential(*modules).eval()


logger = logging.getLogger(__name__)


def table_inputs(frame: pd.DataFrame, config: dict) -> pd.DataFrame:
    """The network's input columns of raw rows, before scaling (float64); an error names the
    columns with missing or non-numeric cells."""
    features, categories = config["features"], config.get("categories") or {}
    missing = [c for c in features if c not in frame.columns]
    if missing:
        raise ValueError(f"rows to classify: missing feature column(s) {missing}")
    table = frame[features].fillna(config.get("imputation") or {})
    inputs, bad = {}, {}
    for column in features:
        values = table[column]
        if column in categories:
            words = values.astype(str).where(values.notna())
            unseen = words.notna() & ~words.isin(categories[column])
            if unseen.any():
                logger.warning(
                    "column '%s': %d row(s) with categories not seen in training: none of "
                    "its one-hot inputs is set",
                    column,
                    int(unseen.sum()),
                )
            for category in categories[column]:
                inputs[f"{column}_{category}"] = (words == category).astype("float64")
            gaps = int(values.isna().sum())
        else:
            inputs[column] = pd.to_numeric(values, errors="coerce").astype("float64")
            gaps = int(inputs[column].isna().sum())
        if gaps:
            bad[column] = gaps
    if bad:
        raise ValueError(
            "rows to classify: missing or non-numeric values (rows per column) " + str(bad)
        )
    return pd.DataFrame(inputs, index=frame.index)[config["inputs"]]


class PhonePriceClassifier(mlflow.pyfunc.PythonModel):
    """Raw rows of the table in; the label column (the original classes) and one probability
    column per class out. Named after the phone table it was written for; serves any table."""

    def load_context(self, context):
        config = json.loads(Path(context.artifacts["config"]).read_text())
        # A model logged before other tables: its features are its inputs, numeric.
        config.setdefault("inputs", config["features"])
        self.config = config
        self.id_column = config["id"]
        self.target = config["target"]
        self.classes = np.asarray(config["classes"])
        self.scalers = [
            (np.asarray(s["mean"], dtype="float64"), np.asarray(s["scale"], dtype="float64"))
            for s in config["scalers"]
        ]
        members = torch.load(context.artifacts["network"], weights_only=True)
        self.networks = [build_network(layers, config["negative_slope"]) for layers in members]

    def predict(self, context, model_input: pd.DataFrame, params=None) -> pd.DataFrame:
        frame = pd.DataFrame(model_input)
        # A copy: pandas may hand out a read-only view, which torch warns about.
        raw = torch.from_numpy(table_inputs(frame, self.config).to_numpy("float64", copy=True))
        total = 0.0
        with torch.no_grad():
            for (mean, scale), network in zip(self.scalers, self.networks):
                # The same float64 arithmetic as StandardScaler.transform, then float32.
                scaled = ((raw - torch.from_numpy(mean)) / torch.from_numpy(scale)).float()
                # Softmax belongs here, at prediction time; training feeds logits to
                # CrossEntropyLoss.
                total = total + torch.softmax(network(scaled), dim=1).double()
        probabilities = (total / len(self.networks)).numpy()
        predicted = probabilities.argmax(axis=1)
        result = pd.DataFrame({self.target: self.classes[predicted]})
        for i, label in enumerate(self.classes):
            result[f"probability_{label}"] = probabilities[:, i]
        if self.id_column in frame.columns:
            result.insert(0, self.id_column, frame[self.id_column].to_numpy())
        return result


mlflow.models.set_model(PhonePriceClassifier())
