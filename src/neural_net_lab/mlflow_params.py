"""Keeps kedro-mlflow's view of typed parameter blocks a plain dict.

kedro-mlflow logs a node's ``params:`` inputs in its ``before_node_run`` and flattens only
dicts, so a typed block would be logged as one long string under ``training`` instead of one
param per setting (``training.optimizer.lr``). This hook runs first and replaces each typed
block in the hooks' copy of the inputs by the settings as given in the parameters; the node
itself still receives the typed block (Kedro hands hooks a copy of its inputs).
"""

from __future__ import annotations

from typing import Any

from kedro.framework.hooks import hook_impl
from pydantic import BaseModel


def plain(value: Any) -> Any:
    """Typed blocks (also inside dicts) as the dicts they were given as."""
    if isinstance(value, BaseModel):
        return value.model_dump(exclude_unset=True)
    if isinstance(value, dict):
        return {key: plain(item) for key, item in value.items()}
    return value


class TypedParamsForMlflow:
    """Typed ``params:`` inputs as plain dicts for kedro-mlflow's param logging."""

    @hook_impl(tryfirst=True)
    def before_node_run(self, inputs: dict[str, Any]) -> None:
        for name, value in inputs.items():
            if name.startswith("params:") or name == "parameters":
                inputs[name] = plain(value)
