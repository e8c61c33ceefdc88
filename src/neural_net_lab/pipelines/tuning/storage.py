"""Where the tuning study lives, as a catalog entry: a journal file, or a database URL whose
password stays in ``conf/local/credentials.yml`` (parameters are logged to MLflow).

Also what makes either one safe to open: a journal whose last line a crash cut off is
trimmed (after a backup), a damaged line before it is named with the way out, a database
URL is checked for its driver before Optuna's bare "Failed to import DB access module", and
drivers that open a fresh PostgreSQL database at once create Optuna's tables one at a time.
"""

from __future__ import annotations

import importlib.util
import json
import logging
import os
import shutil
from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from pathlib import Path
from typing import Any

from kedro.io import AbstractDataset, DatasetError

logger = logging.getLogger(__name__)


class StudyStorageError(DatasetError):
    """The tuning study's storage cannot be opened; the message says what to do."""


class DamagedJournalError(StudyStorageError):
    """A line of the tuning journal that Optuna cannot read, before its last line."""


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


def repair_journal(path: str | Path) -> None:
    """Makes a journal safe to resume, before Optuna reads it.

    A crash while appending leaves a last line without its end. Optuna skips it when it
    reads, but its next append is glued onto it, and from then on every read fails. So that
    line is trimmed, under the journal's own lock (another driver may be appending), after a
    copy of the whole file is kept beside it. A damaged line before the last one cannot be
    trimmed without losing what follows: that stops the run, naming the line and the remedy.
    """
    path = Path(path)
    if not path.is_file() or path.stat().st_size == 0:
        return
    _trim_cut_off_line(path)
    _check_lines(path)


def _trim_cut_off_line(path: Path) -> None:
    # Optuna's default lock for JournalFileBackend: a symlink <journal>.lock, taken around
    # every append, so no driver is half-way through a line while this one looks.
    from optuna.storages.journal import JournalFileSymlinkLock  # noqa: PLC0415 - heavy

    lock = JournalFileSymlinkLock(str(path))
    lock.acquire()
    try:
        with path.open("r+b") as journal:
            size = journal.seek(0, os.SEEK_END)
            start = _last_line_start(journal, size)
            journal.seek(start)
            last = journal.read()
            if last.endswith(b"\n") and _parses(last):
                return
            backup = _backup_name(path)
            shutil.copy2(path, backup)
            journal.truncate(start)
            journal.flush()
            os.fsync(journal.fileno())
    finally:
        lock.release()
    logger.warning(
        "The tuning journal %s ended in a line cut off by a crash (%d bytes, trimmed); "
        "the journal as it was is kept in %s",
        path,
        size - start,
        backup,
    )


def _last_line_start(journal: Any, size: int, chunk: int = 1 << 16) -> int:
    """The offset where the file's last line begins (its final byte may be its newline)."""
    end = size - 1  # a newline there ends the last line, it does not start one
    while end > 0:
        begin = max(0, end - chunk)
        journal.seek(begin)
        found = journal.read(end - begin).rfind(b"\n")
        if found >= 0:
            return begin + found + 1
        end = begin
    return 0


def _parses(line: bytes) -> bool:
    try:
        json.loads(line)
    except ValueError:  # JSONDecodeError, or bytes that are not UTF-8
        return False
    return True


def _backup_name(path: Path) -> Path:
    stamp = datetime.now().strftime("%Y%m%d-%H%M%S")
    backup = path.with_name(f"{path.name}.{stamp}.backup")
    count = 1
    while backup.exists():
        count += 1
        backup = path.with_name(f"{path.name}.{stamp}-{count}.backup")
    return backup


def _check_lines(path: Path) -> None:
    """Optuna fails on any unreadable line that another follows, with a bare JSON error."""
    with path.open("rb") as journal:
        for number, line in enumerate(journal, start=1):
            if not line.endswith(b"\n"):
                return  # being appended by another driver right now
            try:
                json.loads(line.rstrip(b"\r\n"))
            except ValueError as error:
                raise DamagedJournalError(_damaged_message(path, number, error)) from None


def _damaged_message(path: Path, number: int, error: ValueError) -> str:
    where = f"line {number}"
    if isinstance(error, json.JSONDecodeError):
        where += f", column {error.colno}: {error.msg}"
    backups = sorted(path.parent.glob(f"{path.name}.*.backup"))
    restore = "restore a copy of the journal from before the damage" + (
        f" (copies kept when a cut-off line was trimmed: {', '.join(str(b) for b in backups)})"
        if backups
        else ""
    )
    return (
        f"The tuning journal {path} is damaged at {where}. Optuna reads every line of it, so "
        "no study in it can be resumed (a new tuning.study_name alone does not help). Move "
        f"the damaged journal aside and run again to start a new study: `mv {path} "
        f"{path}.damaged`; or {restore}."
    )


def database_url(url: str) -> str:
    """``url`` with a driver that is installed, or an error that says which to install.

    A bare ``postgresql://`` means psycopg2 to SQLAlchemy before 2.1; the ``postgres`` extra
    installs psycopg 3, so without psycopg2 the URL is read as ``postgresql+psycopg://``.
    """
    from sqlalchemy.engine import make_url  # noqa: PLC0415 - only a database study needs it
    from sqlalchemy.exc import ArgumentError, NoSuchModuleError  # noqa: PLC0415

    try:
        parsed = make_url(url)
    except ArgumentError:
        # Never the URL itself in the message: it may carry a password.
        raise StudyStorageError(
            "the tuning study URL in credentials.yml is not a database URL; write "
            "postgresql+psycopg://USER:PASSWORD@HOST:5432/DATABASE"
        ) from None
    shown = parsed.render_as_string(hide_password=True)
    if parsed.drivername == "postgresql" and not importlib.util.find_spec("psycopg2"):
        parsed = parsed.set(drivername="postgresql+psycopg")
    try:
        dialect = parsed.get_dialect()
    except NoSuchModuleError:
        raise StudyStorageError(
            f"the tuning study URL {shown}: SQLAlchemy knows no database "
            f"{parsed.drivername!r}; for PostgreSQL write postgresql+psycopg://..."
        ) from None
    try:
        dialect.import_dbapi()
    except ImportError as error:
        install = (
            "pip install -e '.[postgres]'"
            if parsed.get_backend_name() == "postgresql"
            else f"install the driver {parsed.get_driver_name()!r}"
        )
        raise StudyStorageError(
            f"the tuning study URL {shown} needs the database driver "
            f"{parsed.get_driver_name()!r}, which is not installed ({error}): {install}"
        ) from None
    return parsed.render_as_string(hide_password=False)


# The advisory lock key of schema_lock: any 64-bit number other programs on the database are
# unlikely to take, fixed so that every driver of every version takes the same one.
_SCHEMA_LOCK_KEY = 0x6E6E6C5F6F707475  # "nnl_optu"


@contextmanager
def schema_lock(url: str) -> Iterator[None]:
    """Holds a PostgreSQL advisory lock while Optuna's ``RDBStorage`` opens a database.

    ``RDBStorage.__init__`` creates Optuna's tables (``metadata.create_all``, then alembic's
    stamp) without a guard. On a fresh database, two drivers started at once both find no
    table and both create them: PostgreSQL refuses the second ``CREATE TYPE studydirection``
    (or ``CREATE TABLE alembic_version``) with ``IntegrityError: duplicate key value violates
    unique constraint "pg_type_typname_nsp_index"``, and that driver dies before its first
    trial (optuna 5.1, SQLAlchemy 2.1; known upstream as optuna/optuna#1092). Under this lock
    the second driver finds the tables made and creates nothing. A lock held by a driver that
    dies is released with its connection. Other databases open without it.
    """
    from sqlalchemy import create_engine, text  # noqa: PLC0415 - only a database study needs it
    from sqlalchemy.engine import make_url  # noqa: PLC0415
    from sqlalchemy.pool import NullPool  # noqa: PLC0415

    if make_url(url).get_backend_name() != "postgresql":
        yield
        return
    engine = create_engine(url, poolclass=NullPool)
    try:
        with engine.connect() as connection:
            connection.execute(text("SELECT pg_advisory_lock(:key)"), {"key": _SCHEMA_LOCK_KEY})
            connection.commit()
            try:
                yield
            finally:
                connection.execute(
                    text("SELECT pg_advisory_unlock(:key)"), {"key": _SCHEMA_LOCK_KEY}
                )
                connection.commit()
    finally:
        engine.dispose()
