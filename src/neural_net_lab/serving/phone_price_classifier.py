"""The served phone-price classifier: an MLflow pyfunc model logged as code.

MLflow copies this file into the logged model and runs it when the model is loaded, so it
imports only mlflow, numpy, pandas and torch, never the project: the model loads and serves
wherever those are installed. Its two artifacts are written by ``neural_net_lab.serving``:
``config`` (JSON: feature order, the scaler's mean and scale, label column and classes, the
LeakyReLU slope) and ``network`` (each linear layer's weight and bias, read with
``weights_only=True``).
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
        self.mean = np.asarray(config["scaler"]["mean"], dtype="float64")
        self.scale = np.asarray(config["scaler"]["scale"], dtype="float64")
        layers = torch.load(context.artifacts["network"], weights_only=True)
        self.network = build_network(layers, config["negative_slope"])

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
        # The same float64 arithmetic as StandardScaler.transform, then the network's float32.
        scaled = ((values.to_numpy("float64") - self.mean) / self.scale).astype("float32")
        with torch.no_grad():
            logits = self.network(torch.from_numpy(scaled))
        # Softmax belongs here, at prediction time; training feeds logits to CrossEntropyLoss.
        probabilities = torch.softmax(logits, dim=1).numpy().astype("float64")
        predicted = logits.argmax(dim=1).numpy()
        result = pd.DataFrame({self.target: self.classes[predicted]})
        for i, label in enumerate(self.classes):
            result[f"probability_{label}"] = probabilities[:, i]
        if self.id_column in frame.columns:
            result.insert(0, self.id_column, frame[self.id_column].to_numpy())
        return result


mlflow.models.set_model(PhonePriceClassifier())
