"""The served phone-price classifier: an MLflow pyfunc model logged as code.

MLflow copies this file into the logged model and runs it when the model is loaded, so it
imports only mlflow, numpy, pandas and torch, never the project: the model loads and serves
wherever those are installed. Its two artifacts are written by ``neural_net_lab.serving``:
``config`` (JSON: feature order, each member's scaler mean and scale, label column and
classes, the LeakyReLU slope) and ``network`` (per member, each linear layer's weight and
bias, read with ``weights_only=True``).

A member is one network with its own scaler. The prediction is the mean of the members'
softmax probabilities: the default model is one member (the training split's scaler), a tuned
fold ensemble one per fold network (each with its fold's scaler). This is
``engine.ensemble.Ensemble.probabilities``, written again here because this file may not
import the project.
"""

from __future__ import annotations

import json
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


class PhonePriceClassifier(mlflow.pyfunc.PythonModel):
    """Raw phone features in; ``price_range`` and one probability column per class out."""

    def load_context(self, context):
        config = json.loads(Path(context.artifacts["config"]).read_text())
        self.features = config["features"]
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
        missing = [c for c in self.features if c not in frame.columns]
        if missing:
            raise ValueError(f"phones to price: missing feature column(s) {missing}")
        values = frame[self.features].apply(pd.to_numeric, errors="coerce")
        bad = {c: int(n) for c, n in values.isna().sum().items() if n}
        if bad:
            raise ValueError(
                "phones to price: missing or non-numeric values (rows per column) " + str(bad)
            )
        raw = torch.from_numpy(values.to_numpy("float64"))
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
