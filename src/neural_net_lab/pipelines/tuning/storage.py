"""Where the tuning study lives, as a catalog entry: a journal file, or a database URL whose
password stays in ``conf/local/credentials.yml`` (parameters are logged to MLflow)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError


class OptunaStorageDataset(AbstractDataset[None, dict[str, str]]):
    """Loads ``{"url": ...}`` when credentials give a ``url``, else ``{"path": <journal>}``.

    The study itself is written by Optuna, not by the catalog, so saving is refused; the
    journal is created on first use, so the entry always "exists" (a fresh checkout runs).
    """

    def __init__(
        self,
        *,
        path: str | None = None,
        credentials: dict[str, Any] | None = None,
        metadata: dict[str, Any] | None = None,
    ) -> None:
        self._url = (credentials or {}).get("url")
        if not self._url and not path:
            raise DatasetError(
                "OptunaStorageDataset needs a journal `path` or credentials with a `url`"
            )
        self._path = path
        self.metadata = metadata

    def load(self) -> dict[str, str]:
        if self._url:
            return {"url": self._url}
        return {"path": str(Path(self._path).resolve())}

    def save(self, data: None) -> None:
        raise DatasetError("the tuning study is written by Optuna, not saved through the catalog")

    def _exists(self) -> bool:
        return True

    def _describe(self) -> dict[str, Any]:
        # Never the URL: it may carry a password.
        return {"path": self._path, "url": "<from credentials>" if self._url else None}
