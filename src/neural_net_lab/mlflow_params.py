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


class TableSchemaForMlflow:
    """Logs what data_processing derived from the table (features, id, classes, the
    network's widths) to the Kedro run's MLflow run, under the keys the parameters used when
    these values were typed by hand (``columns.features``, ``model.input_dim``, ...).

    Every run that writes or reads ``table_schema`` logs them once, so a training-only run
    shows them too. A key already logged with another value is left alone: the parameters
    then declared a width or class list that the table contradicts, and the node that reads
    both stops the run with a message naming it (MLflow would only say that a param changed).
    """

    def __init__(self) -> None:
        self._logged: str | None = None  # the MLflow run the schema was logged to

    @hook_impl(trylast=True)  # after kedro-mlflow has logged the node's own params
    def before_node_run(self, inputs: dict[str, Any]) -> None:
        self._log(inputs.get("table_schema"))

    @hook_impl
    def after_node_run(self, outputs: dict[str, Any]) -> None:
        self._log(outputs.get("table_schema"))

    def _log(self, schema: Any) -> None:
        from neural_net_lab.table import TableSchema  # noqa: PLC0415 - keeps settings light

        if not isinstance(schema, TableSchema):
            return
        import mlflow  # noqa: PLC0415 - loaded by kedro-mlflow already

        run = mlflow.active_run()
        if run is None or run.info.run_id == self._logged:
            return
        self._logged = run.info.run_id
        logged = mlflow.MlflowClient().get_run(run.info.run_id).data.params
        # MLflow refuses param values longer than 6000 characters (a table of many columns).
        params = {k: v[:6000] for k, v in schema.mlflow_params().items() if k not in logged}
        if params:
            mlflow.log_params(params)
