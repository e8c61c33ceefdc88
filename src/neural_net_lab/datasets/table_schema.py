"""table_schema.json, typed: what data_processing derived from the user's table, checked on
load so that every pipeline receives a ``TableSchema`` and a damaged or hand-edited file
stops the run with its path and the bad key."""

from __future__ import annotations

from kedro_datasets.json import JSONDataset
from pydantic import ValidationError

from neural_net_lab.table.schema import TableSchema


class TableSchemaDataset(JSONDataset):
    """A JSON file loaded as ``TableSchema`` and saved from one."""

    def load(self) -> TableSchema:
        try:
            return TableSchema.model_validate(super().load())
        except ValidationError as error:
            raise ValueError(
                f"{self._filepath}: not a table schema ({error.error_count()} problem(s): "
                f"{error.errors(include_url=False)[0]['msg']} at "
                f"{'.'.join(map(str, error.errors(include_url=False)[0]['loc']))}); rerun "
                "`kedro run --pipelines data_processing`"
            ) from None

    def save(self, data: TableSchema) -> None:
        super().save(data.model_dump(mode="json"))
