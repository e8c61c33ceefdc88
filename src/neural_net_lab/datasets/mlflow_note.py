"""The description of the active MLflow run: the text the MLflow UI shows on a run's page."""

from __future__ import annotations

import mlflow
from kedro.io import AbstractDataset, DatasetError

# MLflow keeps a run's description in this system tag; the UI edits and shows it as Markdown.
NOTE_TAG = "mlflow.note.content"


class MlflowNoteDataset(AbstractDataset[str, str]):
    """Saves a Markdown text as the description of the run kedro-mlflow opened for the Kedro
    run (``mlflow.note.content``); without an active run (kedro-mlflow off) nothing is saved.
    Loads the active run's description."""

    def save(self, data: str) -> None:
        if mlflow.active_run() is None:
            return
        mlflow.set_tag(NOTE_TAG, data)

    def load(self) -> str:
        run = mlflow.active_run()
        if run is None:
            raise DatasetError("no active MLflow run to read a description from")
        return mlflow.get_run(run.info.run_id).data.tags.get(NOTE_TAG, "")

    def _describe(self) -> dict[str, str]:
        return {"tag": NOTE_TAG}
