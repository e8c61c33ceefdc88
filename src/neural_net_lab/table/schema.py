"""The table's schema: what the data_processing pipeline derived from the user's table and its
training split, recorded once (``table_schema.json``) for every pipeline that trains, scores,
prices or serves.

From the table: the feature columns, the id column, the classes (the labels that occur, in
the order the network numbers them) and the table's name. From the training split: the
categories of each text column (one-hot encoded) and, when imputation is on, the value that
fills each column's missing cells. The network's widths follow: ``inputs`` (numeric columns
as they are, a text column as one input per category) and the number of classes.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Annotated, Any, ClassVar

import numpy as np
import pandas as pd
from pydantic import BaseModel, ConfigDict, Field

from neural_net_lab.engine.config import (
    Block,
    Label,
    ModelParams,
    NonNegativeInt,
    PositiveInt,
)
from neural_net_lab.engine.errors import ParameterError


class DataProcessingParams(Block):
    """How the table is read and split (``data_processing``); every setting has a default,
    so that a block in conf/local that sets one of them keeps the others."""

    block_path: ClassVar[str] = "data_processing"

    table_name: str = Field(default="phone price table", min_length=1)  # in logs and plots
    train_share: Annotated[float, Field(gt=0, lt=1)] = 0.8
    random_state: NonNegativeInt = 66
    # Stratifying needs rows of every class on both sides of each split.
    min_rows_per_class: PositiveInt = 10
    # A text column with more distinct values than this is refused (an id or free text).
    max_categories: PositiveInt = 50
    # Missing values are an error naming the column and rows, unless imputation is on.
    impute: bool = False


class DataValidationError(ValueError):
    """The input table breaks a rule; the message names the columns and the rows."""


class TableSchema(BaseModel):
    """What the network's inputs and outputs are, derived from the table (see the module)."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    name: str
    target: str
    id: str  # the column echoed beside predictions; "id" when the table has none
    features: list[str]  # the raw feature columns, in order
    categories: dict[str, list[str]] = Field(default_factory=dict)  # text column → categories
    imputation: dict[str, float | str] | None = None  # column → fill value; None: refuse gaps
    classes: list[Label]  # the original labels; class code i is classes[i]
    inputs: list[str]  # the network's input columns, in order

    @property
    def input_dim(self) -> int:
        return len(self.inputs)

    @property
    def n_classes(self) -> int:
        return len(self.classes)

    @property
    def numeric(self) -> list[str]:
        """The feature columns read as numbers."""
        return [c for c in self.features if c not in self.categories]

    def network(self, model: ModelParams, where: str = "model") -> ModelParams:
        """``model`` with the widths this table gives; a width given in the parameters that
        disagrees is a ``ParameterError`` naming it (``where`` is the block's path)."""
        derived = {"input_dim": self.input_dim, "n_classes": self.n_classes}
        given = {key: getattr(model, key) for key in derived}
        wrong = {k: v for k, v in given.items() if v is not None and v != derived[k]}
        if wrong:
            raise ParameterError(
                "; ".join(
                    f"{where}.{key}: is {value} but the table {self.name!r} gives {derived[key]} "
                    f"({self._explain(key)}); remove {where}.{key} to derive it"
                    for key, value in wrong.items()
                )
            )
        if all(v is not None for v in given.values()):
            return model
        return type(model).model_validate({**model.dump(), **derived})

    def _explain(self, key: str) -> str:
        if key == "n_classes":
            return f"classes {self.classes} in column '{self.target}'"
        text = f", {len(self.inputs) - len(self.numeric)} one-hot" if self.categories else ""
        return f"{len(self.numeric)} numeric input column(s){text}"

    def codes(self, labels: Sequence[Any] | pd.Series | np.ndarray, source: str) -> np.ndarray:
        """The class codes 0…K−1 of original labels; a label outside ``classes`` is an error
        naming ``source`` and the label column."""
        index = pd.Index(self.classes)
        values = pd.Series(labels).reset_index(drop=True)
        codes = index.get_indexer(values)
        unknown = codes < 0
        if unknown.any():
            examples = values[unknown].astype(str).unique()[:5].tolist()
            raise DataValidationError(
                f"{source}: column '{self.target}': {int(unknown.sum())} row(s) with labels "
                f"outside the classes {self.classes} (e.g. {examples})"
            )
        return codes.astype("int64")

    def labels(self, codes: Sequence[int] | np.ndarray) -> np.ndarray:
        """The original labels of class codes (what a user reads)."""
        return np.asarray(self.classes, dtype=object)[np.asarray(codes, dtype="int64")]

    def probability_columns(self) -> list[str]:
        """``probability_<label>`` per class, as the predictions and the served model name them."""
        return [f"probability_{label}" for label in self.classes]

    def mlflow_params(self) -> dict[str, str]:
        """The derived values under the keys the parameters would have used, formatted as
        kedro-mlflow formats parameters (the phone table's run logs what it logged when they
        were typed by hand)."""
        return {
            "columns.classes": str(self.classes),
            "columns.features": str(self.features),
            "columns.id": self.id,
            "columns.target": self.target,
            "model.input_dim": str(self.input_dim),
            "model.n_classes": str(self.n_classes),
        }


def network_for_table(model: ModelParams, schema: TableSchema) -> ModelParams:
    """A node: the ``model`` block with the widths the table gives (``TableSchema.network``)."""
    return schema.network(model)
