"""The ``tuning`` parameter block, typed: Kedro checks it before any node runs."""

from __future__ import annotations

from typing import Annotated, Any, ClassVar, Literal

from pydantic import ConfigDict, Field, StrictInt, field_validator, model_validator

from neural_net_lab.engine.config import Block, NonNegativeInt, Params, PositiveInt

from .baselines import BaselineParams
from .search_space import Dimension

# The blocks a search-space key may point into, as ``<block>.<path>``.
SEARCHABLE_BLOCKS = ("model", "training")


class DaskParams(Block):
    """Where trials run: a LocalCluster started by the node, or an existing scheduler."""

    address: str | None = None  # e.g. tcp://10.0.0.5:8786; None: a LocalCluster
    n_workers: PositiveInt = 2  # LocalCluster processes, one thread each
    dashboard_address: str | None = ":8787"  # None: no dashboard; ":0": any free port
    retries: NonNegativeInt = 2  # resubmissions of a trial whose worker died
    connect_timeout: Annotated[float, Field(gt=0)] = 10.0  # seconds to reach `address`


class HeartbeatParams(Block):
    """Optuna's trial heartbeats, used with a database storage only (a journal has none; there
    ``stale_after`` fails trials by age). A driver beats for its running trials every
    ``interval`` seconds; a trial without a beat for ``grace_period`` seconds is failed by the
    next run that opens the study, on any machine."""

    interval: PositiveInt = 30
    grace_period: PositiveInt = 120

    @model_validator(mode="after")
    def _grace_outlasts_a_beat(self) -> HeartbeatParams:
        # A live driver beats once an interval; a grace shorter than that fails its trials.
        if self.grace_period <= self.interval:
            raise ValueError(
                f"grace_period ({self.grace_period}) must exceed interval ({self.interval}): "
                "a running trial is beaten only once an interval"
            )
        return self


class PrunerParams(Params):
    """Any ``optuna.pruners`` class by ``name`` with its keyword settings; null name: none."""

    model_config = ConfigDict(extra="allow")

    name: str | None = "MedianPruner"

    def settings(self) -> dict[str, Any]:
        return dict(self.model_extra or {})


class ComparisonParams(Block):
    """The final comparison's repeated folds: after the study, the served network and every
    tuned baseline are scored on ``repeats`` fresh repetitions of stratified k-fold (the
    study's ``folds``), shuffled by ``seed``; the paired differences feed the corrected
    resampled t-test (``neural_net_lab.comparison``)."""

    repeats: PositiveInt = 3
    seed: NonNegativeInt = 7
    n_jobs: PositiveInt = 2  # processes fitting the baselines' folds (scikit-learn's n_jobs)


class TuningParams(Block):
    """``tuning`` in parameters_tuning.yml."""

    block_path: ClassVar[str] = "tuning"

    study_name: str = Field(min_length=1)
    folds: Annotated[StrictInt, Field(ge=2)] = 5
    fold_seed: NonNegativeInt = 66
    seed: NonNegativeInt = 42
    n_trials: NonNegativeInt | None = 30
    timeout: Annotated[float, Field(gt=0)] | None = None
    # A journal's trials left RUNNING are failed by age; a database's by heartbeat.
    stale_after: Annotated[float, Field(gt=0)] = 3600.0
    heartbeat: HeartbeatParams = HeartbeatParams()
    # Folds trained as one stacked network (engine.stack): the same numbers, faster.
    stacked: bool = True
    # What is served as the tuned model: the chosen trial's fold networks averaged
    # (each fold trained with `ensemble_seeds` seeds), or one network refit on all rows.
    final: Literal["ensemble", "refit"] = "ensemble"
    ensemble_seeds: PositiveInt = 3
    pruner: PrunerParams = PrunerParams()
    search_space: dict[str, Dimension] = Field(min_length=1)
    # Classical models tuned on the study's folds, refit and scored once on the test split.
    baselines: dict[str, BaselineParams] = Field(default_factory=dict)
    comparison: ComparisonParams = ComparisonParams()
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
    def _fresh_comparison_folds(self) -> TuningParams:
        # RepeatedStratifiedKFold(random_state=s) draws its first repetition exactly as
        # StratifiedKFold(shuffle=True, random_state=s) does: with the fold seed, the
        # "fresh" folds would begin with the study's own.
        if self.comparison.seed == self.fold_seed:
            raise ValueError(
                f"comparison.seed ({self.comparison.seed}) equals fold_seed: the repeated "
                "folds would repeat the study's folds as their first repetition; give "
                "comparison.seed another value"
            )
        return self

    @model_validator(mode="after")
    def _budget(self) -> TuningParams:
        if self.n_trials is None and self.timeout is None:
            raise ValueError("give n_trials, timeout or both: the study needs a budget")
        return self
