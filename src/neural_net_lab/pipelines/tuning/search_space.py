"""The search space as data: sampling a trial's values and setting them into the default blocks.

A trial's configuration is the default ``model`` / ``training`` blocks with each sampled value
set at its dotted path (``training.optimizer.lr``), validated like any parameters. Shorter
paths are set first, so that a whole optimizer block (``training.optimizer``) is chosen before
its learning rate; a new optimizer name replaces the old block (``merge``), so Adam's betas
never reach SGD.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any, Literal

from pydantic import StrictBool, ValidationError, model_validator

from neural_net_lab.engine.config import Block, ModelParams, TrainingParams
from neural_net_lab.engine.overrides import merge, with_overrides

_PRIMITIVE = (type(None), bool, int, float, str)
_NONZERO = ":nonzero"  # suffix of the switch that turns an or_zero penalty on


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


def encode(choice: Any) -> Any:
    """Optuna stores primitives only: lists and blocks become their JSON text."""
    return choice if isinstance(choice, _PRIMITIVE) else json.dumps(choice, sort_keys=True)


def suggest(trial: Any, space: Mapping[str, Dimension]) -> dict[str, Any]:
    """Samples one value per dimension from an Optuna trial (define-by-run)."""
    values: dict[str, Any] = {}
    for key, dim in space.items():
        if dim.type == "categorical":
            by_code = {encode(c): c for c in dim.choices}
            values[key] = by_code[trial.suggest_categorical(key, list(by_code))]
        elif dim.or_zero and not trial.suggest_categorical(key + _NONZERO, [False, True]):
            values[key] = 0.0
        elif dim.type == "int":
            step = int(dim.step or 1)
            values[key] = trial.suggest_int(
                key, int(dim.low), int(dim.high), step=step, log=dim.log
            )
        else:
            values[key] = trial.suggest_float(key, dim.low, dim.high, step=dim.step, log=dim.log)
    return values


def configure(
    model: ModelParams, training: TrainingParams, values: Mapping[str, Any]
) -> tuple[ModelParams, TrainingParams]:
    """The default blocks with ``values`` set at their dotted paths, each block validated once."""
    changes: dict[str, dict[str, Any]] = {"model": {}, "training": {}}
    for key in sorted(values, key=lambda k: k.count(".")):
        block, *path = key.split(".")
        override: Any = values[key]
        for part in reversed(path):
            override = {part: override}
        changes[block] = merge(changes[block], override)
    return (
        with_overrides(model, changes["model"], "model"),
        with_overrides(training, changes["training"], "training"),
    )


def check_space(
    space: Mapping[str, Dimension], model: ModelParams, training: TrainingParams
) -> dict[str, Any]:
    """Checks every dimension against the default blocks before any trial runs.

    Each bound and choice, set alone into the defaults, must make valid blocks (an unknown
    name or a setting the optimizer lacks fails here), and the default configuration must lie
    inside the space, because it is enqueued as the first trial. Returns that trial's Optuna
    parameters.
    """
    for key, dim in space.items():
        candidates = dim.choices if dim.type == "categorical" else [dim.low, dim.high]
        if dim.type == "int":
            candidates = [int(v) for v in candidates]
        for value in candidates:
            try:
                configure(model, training, {key: value})
            except (ValidationError, ValueError, TypeError) as error:
                raise ValueError(
                    f"tuning.search_space.{key}: the value {value!r} makes invalid parameters: "
                    f"{_first_line(error)}"
                ) from error
    return default_params(space, model, training)


def default_params(
    space: Mapping[str, Dimension], model: ModelParams, training: TrainingParams
) -> dict[str, Any]:
    """The Optuna parameters that reproduce the default blocks (the enqueued first trial)."""
    blocks = {
        "model": model.model_dump(exclude_unset=True),
        "training": training.model_dump(exclude_unset=True),
    }
    params: dict[str, Any] = {}
    for key, dim in space.items():
        block, *path = key.split(".")
        value: Any = blocks[block]
        for part in path:
            value = value.get(part) if isinstance(value, Mapping) else None
        where = f"tuning.search_space.{key}"
        if dim.type == "categorical":
            match = [c for c in dim.choices if _matches(c, value)]
            if not match:
                raise ValueError(
                    f"{where}: the default value {value!r} is not among the choices "
                    f"{dim.choices}; the default configuration is the first trial, so add it"
                )
            params[key] = encode(match[0])
            continue
        if value is None:
            value = 0.0 if dim.or_zero else None
        if value == 0 and dim.or_zero:
            params[key + _NONZERO] = False
            continue
        if value is None or not dim.low <= value <= dim.high:
            raise ValueError(
                f"{where}: the default value {value!r} is outside [{dim.low}, {dim.high}]; the "
                "default configuration is the first trial, so widen the range"
            )
        if dim.or_zero:
            params[key + _NONZERO] = True
        params[key] = value
    return params


def _matches(choice: Any, value: Any) -> bool:
    # A block choice ({name: Adam}) matches a default block that agrees on every key it names.
    if isinstance(choice, Mapping) and isinstance(value, Mapping):
        return all(k in value and _matches(v, value[k]) for k, v in choice.items())
    return choice == value


def _first_line(error: Exception) -> str:
    return " ".join(str(error).split())[:300]
