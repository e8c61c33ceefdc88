"""Atomic saves of the catalog's local files, and errors for a file that does not load.

What belongs here: how a local catalog file is written so that no reader ever sees part of
it (``AtomicDataset``), the catalog class that gives every local file entry that wrapper
(``AtomicSavesCatalog``, the project's ``DATA_CATALOG_CLASS``), and the errors raised when a
file exists but does not load. Which pipeline rewrites a file is ``neural_net_lab.writers``.

kedro-datasets open the target and write into it: a reader in another process sees an empty
or partial file, and a writer killed mid-save (SIGKILL, the OOM killer) leaves one. Here the
inner dataset writes a temporary file in the target's folder, which is then renamed over the
target; ``os.replace`` within one filesystem is atomic on POSIX, so a reader opens the old
file or the new one. Only the standard library and ``kedro.io`` are imported: settings.py
imports this module before MLflow's warnings are filtered.
"""

from __future__ import annotations

import contextlib
import copy
import hashlib
import logging
import os
import re
import secrets
import shutil
import socket
import stat
from pathlib import Path, PurePosixPath
from typing import Any

from kedro.framework.context import CatalogCommandsMixin
from kedro.io import AbstractDataset, DataCatalog, DatasetError
from kedro.io.core import get_protocol_and_path

from ..writers import command, default_run_note, writers

logger = logging.getLogger(__name__)

_ATOMIC_TYPE = f"{__package__}.AtomicDataset"
_MLFLOW_ARTIFACT_TYPE = "MlflowArtifactDataset"
# A load that overlapped a save of its file is repeated, up to this many times in all.
_LOAD_ATTEMPTS = 50
# Keys that Kedro reads from the top level of an entry, not from the dataset's constructor.
_CATALOG_KEYS = ("metadata", "validator")


class DamagedFileError(DatasetError):
    """A dataset's file exists but does not load: empty, cut short, or not of its format."""

    def __init__(self, path: PurePosixPath, cause: BaseException) -> None:
        self.path = path
        self.cause = cause
        super().__init__(f"{path} ({_size(path)}) exists but does not load: {_summary(cause)}.")


class DamagedInputError(DatasetError):
    """A run's input file exists but does not load; the message names the file, the cause,
    and the pipeline that rewrites it (``kedro run --pipelines <writer>``)."""

    def __init__(self, dataset_name: str, damaged: DamagedFileError) -> None:
        self.dataset_name = dataset_name
        self.path, self.cause = damaged.path, damaged.cause
        self.writers = writers(dataset_name)
        super().__init__(_damaged_input_message(dataset_name, damaged, self.writers))


class AtomicDataset(AbstractDataset):
    """Wraps a dataset that writes one local file, so that the file is replaced whole.

    ``dataset`` is the inner dataset's catalog entry (``type``, ``filepath``, its arguments),
    as in Kedro's ``CachedDataset``. Loads, ``exists`` and ``release`` go to the inner dataset
    on the final path; a save goes to a new inner dataset on a temporary path beside it.

    ``_filepath`` is the final path and there is no ``_version``: kedro-mlflow's
    ``MlflowArtifactDataset`` subclasses this class and logs ``self._filepath`` after a save,
    and the project's missing-input check (``hooks._source``) reads it too.
    """

    def __init__(self, dataset: dict[str, Any], metadata: dict[str, Any] | None = None) -> None:
        self._config = _local_file_config(dataset)
        self._filepath = PurePosixPath(get_protocol_and_path(self._config["filepath"])[1])
        self._dataset = AbstractDataset.from_config(str(self._filepath), self._config)
        self.metadata = metadata

    def load(self) -> Any:
        # A save replaces the file whole, but a loader may open it more than once (pyarrow
        # reads a Parquet footer, then its pages): across a replace, it would mix two files.
        # So a load counts only if the file was the same one before and after it.
        path = Path(self._filepath)
        for _ in range(_LOAD_ATTEMPTS):
            before = _identity(path)
            try:
                data = self._dataset.load()
            except DatasetError as error:  # kedro wraps whatever the loader raised
                after = _identity(path)
                if before is None and after is None:
                    raise  # a missing file is not a damaged one
                if after != before:
                    continue  # replaced during the load: load the new file
                raise DamagedFileError(self._filepath, error.__cause__ or error) from error
            if _identity(path) == before:
                return data
        raise DatasetError(
            f"{self._filepath} was replaced during each of {_LOAD_ATTEMPTS} loads in a row: "
            "another process rewrites it without pause."
        )

    def save(self, data: Any) -> None:
        # Through a symbolic link, as a plain save writes: the link stays, its file is replaced.
        target = Path(os.path.realpath(self._filepath))
        target.parent.mkdir(parents=True, exist_ok=True)
        remove_abandoned_partials(target)
        partial = target.with_name(partial_name(target.name))
        try:
            self._dataset_at(partial).save(data)
            if not partial.is_file():
                raise DatasetError(
                    f"{self._filepath}: the dataset saved a folder; atomic saves replace "
                    "single files. Save one object per catalog entry."
                )
            _fsync(partial)
            _copy_mode(target, partial)
            os.replace(partial, target)
        except BaseException:  # an interrupt too: nothing may be left beside the target
            _remove(partial)
            raise
        _fsync(target.parent, os.O_DIRECTORY)  # the rename itself survives a power loss
        self._dataset.release()  # whatever it cached of the file is the old one's

    def _exists(self) -> bool:
        return self._dataset.exists()

    def _release(self) -> None:
        self._dataset.release()

    def _describe(self) -> dict[str, Any]:
        return self._dataset._describe()

    def _dataset_at(self, path: Path) -> AbstractDataset:
        return AbstractDataset.from_config(str(path), {**self._config, "filepath": str(path)})


class AtomicSavesCatalog(DataCatalog, CatalogCommandsMixin):
    """Kedro's ``DataCatalog``, where every entry that writes a local file is replaced
    atomically (``wrap_local_files``), and an input file that does not load stops the run with
    a ``DamagedInputError`` naming the pipeline that rewrites it. With the commands that
    ``kedro catalog`` calls on the context's catalog (``CatalogCommandsMixin``)."""

    @classmethod
    def from_config(
        cls,
        catalog: dict[str, dict[str, Any]] | None,
        credentials: dict[str, dict[str, Any]] | None = None,
        load_versions: dict[str, str] | None = None,
        save_version: str | None = None,
        validation_enabled: bool = True,
    ) -> AtomicSavesCatalog:
        return super().from_config(
            wrap_local_files(catalog or {}),
            credentials,
            load_versions,
            save_version,
            validation_enabled,
        )

    def load(self, ds_name: str, version: str | None = None) -> Any:
        try:
            return super().load(ds_name, version)
        except DatasetError as error:
            damaged = _find_cause(error, DamagedFileError)
            if damaged is None:
                raise
            raise DamagedInputError(ds_name, damaged) from damaged


def wrap_local_files(catalog: dict[str, Any]) -> dict[str, Any]:
    """The catalog configuration with each entry (or pattern) that writes a local file
    wrapped in ``AtomicDataset``, the inner dataset of ``MlflowArtifactDataset`` entries
    included; other entries unchanged. Wrapping twice changes nothing."""
    return {name: _wrap_entry(entry) for name, entry in catalog.items()}


def _wrap_entry(entry: Any) -> Any:
    if not isinstance(entry, dict):
        return entry  # Kedro reports a malformed entry itself
    kind = str(entry.get("type", ""))
    if kind.rsplit(".", 1)[-1] == _MLFLOW_ARTIFACT_TYPE and isinstance(entry.get("dataset"), dict):
        # Inside: kedro-mlflow subclasses its inner dataset and logs that one's file.
        return {**entry, "dataset": _wrap_entry(entry["dataset"])}
    if not writes_local_file(entry):
        return entry
    wrapper = {key: entry[key] for key in _CATALOG_KEYS if key in entry}
    inner = {key: value for key, value in entry.items() if key not in _CATALOG_KEYS}
    return {"type": _ATOMIC_TYPE, "dataset": inner, **wrapper}


def writes_local_file(entry: dict[str, Any]) -> bool:
    """Whether an entry's dataset writes one local file: a ``filepath`` with no protocol or
    ``file://``, and not versioned (a versioned save never overwrites a file; its path is
    chosen by the dataset at save time)."""
    filepath = entry.get("filepath")
    if not isinstance(filepath, str) or entry.get("versioned"):
        return False
    return get_protocol_and_path(filepath)[0] == "file"


def partial_name(name: str) -> str:
    """The temporary file for target ``name``: hidden, in the same folder, ending with the
    target's suffix (some savers choose the format by it), and tagged with this writer's pid,
    host and a random token, so that writers never share one and a dead one's can be found."""
    suffix = PurePosixPath(name).suffix
    return f".{name}.{os.getpid()}-{_host_tag()}-{secrets.token_hex(4)}.partial{suffix}"


def remove_abandoned_partials(target: Path) -> list[Path]:
    """Removes the temporary files of ``target`` left by writers on this host that no longer
    run (killed mid-save); returns them. Files of live writers and of other hosts (a shared
    folder) are left alone: their pids cannot be checked from here."""
    pattern = re.compile(
        rf"\.{re.escape(target.name)}\.(?P<pid>\d+)-(?P<host>[0-9a-f]{{8}})-[0-9a-f]+"
        rf"\.partial{re.escape(target.suffix)}"
    )
    removed = []
    with contextlib.suppress(FileNotFoundError), os.scandir(target.parent) as entries:
        for entry in entries:
            found = pattern.fullmatch(entry.name)
            if found and found["host"] == _host_tag() and not _alive(int(found["pid"])):
                _remove(Path(entry.path))
                removed.append(Path(entry.path))
                logger.info(
                    "Removed %s, left by writer %s that no longer runs", entry.path, found["pid"]
                )
    return removed


def _local_file_config(dataset: Any) -> dict[str, Any]:
    if not isinstance(dataset, dict) or not writes_local_file(dataset):
        raise DatasetError(
            f"AtomicDataset wraps a dataset that writes one local file: a 'dataset' entry with "
            f"a local, unversioned 'filepath'. Got: {dataset!r}"
        )
    return copy.deepcopy(dataset)


def _host_tag() -> str:
    return hashlib.sha256(socket.gethostname().encode()).hexdigest()[:8]


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True  # another thread of this process may be saving
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # another user's process
    try:  # a killed writer that its parent has not reaped yet is dead too
        return Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0] != "Z"
    except (OSError, IndexError):
        return True


def _identity(path: Path) -> tuple[int, ...] | None:
    """What changes when a save replaces the file (a new inode), or None when it is missing."""
    try:
        found = path.stat()
    except FileNotFoundError:
        return None
    return (found.st_dev, found.st_ino, found.st_size, found.st_mtime_ns, found.st_ctime_ns)


def _fsync(path: Path, flags: int = 0) -> None:
    descriptor = os.open(path, os.O_RDONLY | flags)
    try:
        os.fsync(descriptor)
    finally:
        os.close(descriptor)


def _copy_mode(target: Path, partial: Path) -> None:
    # A plain save truncates the target and keeps its mode. A new file already has the mode a
    # plain save gives (0666 & ~umask): the inner dataset created it with open().
    try:
        mode = stat.S_IMODE(target.stat().st_mode)
    except FileNotFoundError:
        return
    os.chmod(partial, mode)


def _remove(path: Path) -> None:
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path, ignore_errors=True)
    else:
        path.unlink(missing_ok=True)


def _find_cause(error: BaseException, kind: type[BaseException]) -> Any:
    seen = set()
    while error is not None and id(error) not in seen:
        if isinstance(error, kind):
            return error
        seen.add(id(error))
        error = error.__cause__ or error.__context__
    return None


def _summary(cause: BaseException) -> str:
    # The first sentence: torch's loader, for one, follows it with a page of advice (load with
    # weights_only=False, file an issue) that does not apply to a damaged file.
    first = next((line.strip() for line in str(cause).splitlines() if line.strip()), "")
    sentence = re.split(r"(?<=\.)\s", first, maxsplit=1)[0].rstrip(".")[:300]
    return f"{type(cause).__name__}: {sentence}" if sentence else type(cause).__name__


def _size(path: PurePosixPath) -> str:
    try:
        return f"{Path(path).stat().st_size} bytes"
    except OSError:
        return "size unknown"


def _damaged_input_message(name: str, damaged: DamagedFileError, found: list[str]) -> str:
    problem = (
        f"input '{name}' ({damaged.path}, {_size(damaged.path)}) exists but does not load: "
        f"{_summary(damaged.cause)}. It is damaged (empty, or cut short by a writer that was "
        "killed) or not in the format its catalog entry reads."
    )
    if not found:
        return (
            f"{problem} No pipeline writes it: restore the file or point its catalog entry at "
            "an existing one."
        )
    return (
        f"{problem} Rewrite it: run {command(found[0])}{default_run_note(found[:1])}, "
        "then run this pipeline again."
    )
