"""tuned_parameters.yml, typed: the configuration the tuning pipeline chose, checked on load.

The file is YAML (a user reads it, ``kedro run --env tuned`` reads its blocks), so what
belongs here is its shape (``TunedParams``) and the dataset that turns it into that shape and
back (``TunedParametersDataset``): the tuning nodes and inference receive typed blocks, and a
bad file stops the run with its path and the bad key.
"""

from __future__ import annotations

from typing import Any, Literal

from kedro_datasets.yaml import YAMLDataset

from neural_net_lab.engine.config import (
    Block,
    ModelParams,
    NonNegativeInt,
    PositiveInt,
    TrainingParams,
)
from neural_net_lab.engine.errors import ParameterError


class TunedParams(Block):
    """The chosen trial's ``model`` and ``training`` blocks, what is served from them
    (``final``: its fold ensemble or its refit) and the scores it was chosen on."""

    model: ModelParams
    training: TrainingParams
    # A file written before fold ensembles has no `final`: it served the refit.
    final: Literal["ensemble", "refit"] = "refit"
    ensemble_seeds: PositiveInt | None = None
    trial: NonNegativeInt | None = None
    cv_accuracy: float | None = None
    cv_std: float | None = None
    fold_accuracy: list[float] | None = None

    def blocks(self) -> dict[str, Any]:
        """``model`` and ``training`` as parameters (conf/tuned/parameters.yml holds them)."""
        return {
            "model": self.model.model_dump(),
            "training": self.training.model_dump(exclude_none=True),
        }


class TunedParametersDataset(YAMLDataset):
    """A YAML file loaded as ``TunedParams`` and saved from one."""

    def load(self) -> TunedParams:
        try:
            return TunedParams.model_validate(super().load())
        except ParameterError as error:
            raise ParameterError(f"{self._filepath}: {error}") from None

    def save(self, data: TunedParams) -> None:
        super().save({**data.model_dump(exclude={"model", "training"}), **data.blocks()})
