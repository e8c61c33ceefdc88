"""The MLflow tracking store set up by one run at a time.

On a fresh checkout, the first run creates ``mlflow.db``: MLflow runs its schema migrations
and kedro-mlflow creates the experiment. Two runs started at once both do so, and one dies
(``sqlite3.OperationalError: duplicate column name: step``, or the experiment "already
exists"). A file lock beside the SQLite file serializes that setup; once it is done, runs log
side by side, as SQLite's own locking allows.

Only SQLite stores are locked here: a tracking server or a database server migrates under its
administrator (``mlflow db upgrade``), not under each run.
"""

from __future__ import annotations

from collections.abc import Generator
from pathlib import Path
from typing import Any

from filelock import FileLock, Timeout
from kedro.framework.hooks import hook_impl

# kedro-mlflow registers the same pattern in its own after_context_created, which runs inside
# this hook; it is registered here first so that the store's URI can be read before.
_MLFLOW_PATTERNS = ["mlflow*", "mlflow*/**", "**/mlflow*"]
SETUP_TIMEOUT_S = 120.0


def setup_lock(tracking_uri: str | None) -> FileLock | None:
    """The lock that guards the creation of a SQLite store (``<file>.lock``), else None."""
    if not tracking_uri or not tracking_uri.startswith("sqlite:///"):
        return None
    database = tracking_uri.removeprefix("sqlite:///").split("?", 1)[0]
    if database in ("", ":memory:"):
        return None
    path = Path(database)
    path.parent.mkdir(parents=True, exist_ok=True)
    return FileLock(f"{path}.lock", timeout=SETUP_TIMEOUT_S)


def _tracking_uri(context: Any) -> str | None:
    loader = context.config_loader
    if "mlflow" not in loader.config_patterns:
        loader.config_patterns["mlflow"] = _MLFLOW_PATTERNS
    try:
        return loader["mlflow"]["server"]["mlflow_tracking_uri"]
    except (KeyError, TypeError):  # no mlflow.yml: kedro-mlflow's default store, not SQLite
        return None


class TrackingStoreHooks:
    """Holds the store's setup lock around every ``after_context_created`` hook, kedro-mlflow's
    included: the schema and the experiment are created by one run at a time."""

    @hook_impl(wrapper=True)
    def after_context_created(self, context: Any) -> Generator[None, Any, Any]:
        lock = setup_lock(_tracking_uri(context))
        if lock is None:
            return (yield)
        try:
            lock.acquire()
        except Timeout as error:
            raise RuntimeError(
                f"another run has held {lock.lock_file} for {SETUP_TIMEOUT_S:.0f} s while "
                "setting up the MLflow store; if no other run is starting, delete that file"
            ) from error
        try:
            return (yield)
        finally:
            lock.release()
