"""The ``tuning`` parameter block, typed: Kedro checks it before any node runs."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import (
    ConfigDict,
    Field,
    StrictBool,
    StrictInt,
    field_validator,
    model_validator,
)

from neural_net_lab.engine.config import Block, NonNegativeInt, Params, PositiveInt

# The blocks a search-space key may point into, as ``<block>.<path>``.
SEARCHABLE_BLOCKS = ("model", "training")


class Dimension(Block):
    """One searched parameter: ``float`` / ``int`` in [low, high] (``log`` for a log scale;
    ``or_zero`` adds the value 0 beside a log range, for penalties), or ``categorical`` over
    ``choices`` (any YAML values: lists of widths, optimizer blocks)."""

    type: Literal["float", "int", "categorical"]
    low: float | None = None
    high: float | None = None
    log: StrictBool = False
    step: float | None = None
    or_zero: StrictBool = False
    choices: list[Any] | None = None

    @model_validator(mode="after")
    def _bounds(self) -> Dimension:
        if self.type == "categorical":
            if not self.choices:
                raise ValueError("a categorical dimension needs a non-empty list of choices")
            if self.low is not None or self.high is not None or self.log or self.or_zero:
                raise ValueError("a categorical dimension takes only choices")
            return self
        if self.choices is not None:
            raise ValueError(f"a {self.type} dimension takes low and high, not choices")
        if self.low is None or self.high is None:
            raise ValueError(f"a {self.type} dimension needs low and high")
        if self.low >= self.high:
            raise ValueError(f"low ({self.low}) must be below high ({self.high})")
        if self.log and self.low <= 0:
            raise ValueError(f"a log range needs low > 0, got low = {self.low}")
        if self.or_zero and not self.log:
            raise ValueError("or_zero (0 or a log range) needs log: true")
        if self.log and self.step is not None:
            raise ValueError("a log range takes no step")
        if self.type == "int" and not all(float(v).is_integer() for v in (self.low, self.high)):
            raise ValueError(f"an int dimension needs integer bounds, got {self.low}, {self.high}")
        return self


class DaskParams(Block):
    """Where trials run: a LocalCluster started by the node, or an existing scheduler."""

    address: str | None = None  # e.g. tcp://10.0.0.5:8786; None: a LocalCluster
    n_workers: PositiveInt = 2  # LocalCluster processes, one thread each
    dashboard_address: str | None = ":8787"  # None: no dashboard; ":0": any free port
    retries: NonNegativeInt = 2  # resubmissions of a trial whose worker died
    connect_timeout: Annotated[float, Field(gt=0)] = 10.0  # seconds to reach `address`


class PrunerParams(Params):
    """Any ``optuna.pruners`` class by ``name`` with its keyword settings; null name: none."""

    model_config = ConfigDict(extra="allow")

    name: str | None = "MedianPruner"

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class TuningParams(Block):
    """``tuning`` in parameters_tuning.yml."""

    block_path: ClassVar[str] = "tuning"

    study_name: str = Field(min_length=1)
    folds: Annotated[StrictInt, Field(ge=2)] = 5
    fold_seed: NonNegativeInt = 66
    seed: NonNegativeInt = 42
    n_trials: NonNegativeInt | None = 30
    timeout: Annotated[float, Field(gt=0)] | None = None
    stale_after: Annotated[float, Field(gt=0)] = 3600.0
    # Folds trained as one stacked network (engine.stacked): the same numbers, faster.
    stacked: bool = True
    pruner: PrunerParams = PrunerParams()
    search_space: dict[str, Dimension] = Field(min_length=1)
    dask: DaskParams = DaskParams()

    @field_validator("search_space")
    @classmethod
    def _searchable_keys(cls, space: dict[str, Dimension]) -> dict[str, Dimension]:
        for key in space:
            block, _, rest = key.partition(".")
            if block not in SEARCHABLE_BLOCKS or not rest:
                raise ValueError(
                    f"search_space key {key!r} must name a parameter of the "
                    f"{' or '.join(SEARCHABLE_BLOCKS)} block, e.g. training.optimizer.lr"
                )
        return space

    @model_validator(mode="after")
    def _budget(self) -> TuningParams:
        if self.n_trials is None and self.timeout is None:
            raise ValueError("give n_trials, timeout or both: the study needs a budget")
        return self
