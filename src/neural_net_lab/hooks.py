"""Project hooks."""

from __future__ import annotations

import logging
from typing import Any

from kedro.framework.hooks import hook_impl

logger = logging.getLogger(__name__)


def _source(dataset: Any) -> str | None:
    # Wrappers (kedro-mlflow's artifact dataset) keep the real dataset underneath.
    for candidate in (dataset, getattr(dataset, "_dataset", None)):
        path = getattr(candidate, "_filepath", None)
        if path is not None:
            return str(path)
    return None


class InputFileHooks:
    """Names the files a failing node read, so that an error points at the file to fix."""

    @hook_impl
    def on_node_error(self, error: Exception, node: Any, catalog: Any, inputs: dict[str, Any]) -> None:
        files = [f"'{name}' ({path})" for name in node.inputs
                 if not name.startswith("params:") and (path := _source(catalog.get(name)))]  # fmt: skip
        if files:
            note = f"node '{node.name}' read {', '.join(files)}"
            error.add_note(note)
            logger.error("%s failed: %s; %s", node.name, error, note)
