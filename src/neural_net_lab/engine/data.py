"""Conversions between the catalog's DataFrames and tensors, and batched prediction."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import pandas as pd
import torch
from torch import nn


class ModelInputs(Protocol):
    """What the engine reads of a table's schema (``neural_net_lab.table.TableSchema``): the
    model input's columns and its label column (class codes 0…K−1)."""

    @property
    def inputs(self) -> Sequence[str]: ...

    @property
    def target(self) -> str: ...


def to_tensors(
    frame: pd.DataFrame, feature_columns: Sequence[str], target_column: str | None = None
) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Returns the features as a float32 matrix and, if asked, the labels as int64."""
    missing = [
        c
        for c in [*feature_columns, *([target_column] if target_column else [])]
        if c not in frame.columns
    ]
    if missing:
        raise KeyError(f"columns missing from the model input: {missing}")
    features = torch.from_numpy(frame[list(feature_columns)].to_numpy(dtype="float32", copy=True))
    if target_column is None:
        return features, None
    return features, torch.from_numpy(frame[target_column].to_numpy(dtype="int64", copy=True))


@torch.no_grad()
def predict_logits(
    model: nn.Module, features: torch.Tensor, batch_size: int = 65536
) -> torch.Tensor:
    """Logits of ``model`` in eval mode, in chunks so that millions of rows fit in memory."""
    was_training = model.training
    model.eval()
    try:
        return torch.cat([model(chunk) for chunk in features.split(batch_size)])
    finally:
        model.train(was_training)


def accuracy(logits: torch.Tensor, labels: torch.Tensor) -> float:
    """Share of rows whose highest logit is the label."""
    return (logits.argmax(dim=1) == labels).float().mean().item()
