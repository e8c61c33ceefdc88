"""Atomic saves of the catalog's local files: a reader in another process never sees part of a
file, a writer killed mid-save leaves the previous file whole and its temporary file is never
loaded and later removed, a file keeps the mode a plain save gives it, and MLflow artifact
entries still log the final file.

Real files and processes throughout, through the project's catalog as ``kedro run`` builds it
(conf/base/catalog.yml, the project's config loader settings and ``DATA_CATALOG_CLASS``). The
writer and reader processes run this module's functions (``python -c``).
"""

from __future__ import annotations

import json
import os
import re
import signal
import stat
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import mlflow
import numpy as np
import pandas as pd
import pytest
import torch
from kedro.config import OmegaConfigLoader
from kedro.framework.session import KedroSession
from kedro.framework.startup import bootstrap_project
from kedro.io import DatasetError
from kedro_datasets.json import JSONDataset

from neural_net_lab.datasets import AtomicDataset, AtomicSavesCatalog
from neural_net_lab.datasets.atomic import (
    partial_name,
    remove_abandoned_partials,
    wrap_local_files,
)
from neural_net_lab.hooks import _source

from .conftest import kedro_cli

PROJECT_ROOT = Path(__file__).resolve().parents[1]
SAVES = 200


def project_catalog(project: Path) -> Any:
    """The project's catalog as ``kedro run`` builds it; its relative paths are relative to the
    working directory, which the callers make ``project``."""
    from neural_net_lab import settings  # noqa: PLC0415 - what bootstrap_project would load

    loader = OmegaConfigLoader(conf_source=str(project / "conf"), **settings.CONFIG_LOADER_ARGS)
    return settings.DATA_CATALOG_CLASS.from_config(loader["catalog"])


# ---- the versions a writer saves, and how a reader recognises a whole one ----------------


def split_frame(version: int, rows: int = 5_000) -> pd.DataFrame:
    index = np.arange(rows)
    return pd.DataFrame({"version": version, "row": index, "value": index * 0.5 + version})


def split_version(frame: pd.DataFrame) -> int:
    version = int(frame["version"].iloc[0])
    if not frame.equals(split_frame(version)):
        raise AssertionError(f"a frame that is not version {version} as saved")
    return version


def phone_model(version: int) -> torch.nn.Module:
    """About 1 MB of weights, every one equal to ``version``."""
    model = torch.nn.Sequential(
        torch.nn.Linear(20, 512),
        torch.nn.ReLU(),
        torch.nn.Linear(512, 512),
        torch.nn.Linear(512, 4),
    )
    with torch.no_grad():
        for parameter in model.parameters():
            parameter.fill_(version)
    return model


def model_version(state: dict[str, torch.Tensor]) -> int:
    version = int(next(iter(state.values())).reshape(-1)[0])
    expected = phone_model(version).state_dict()
    whole = state.keys() == expected.keys() and all(
        torch.equal(state[key], expected[key]) for key in expected
    )
    if not whole:
        raise AssertionError(f"a state dict that is not version {version} as saved")
    return version


KINDS: dict[str, tuple[str, Callable[[int], Any], Callable[[Any], int]]] = {
    "split": ("train_split", split_frame, split_version),
    "model": ("phone_price_model", phone_model, model_version),
}


# ---- what the writer and reader processes run ---------------------------------------------


def save_versions(kind: str, count: int, ready: str, done: str) -> None:
    """Saves versions 1..count once the reader has started, then marks ``done``."""
    name, make, _ = KINDS[kind]
    catalog = project_catalog(Path.cwd())
    _wait_for(Path(ready), timeout=120)
    for version in range(1, count + 1):
        catalog.save(name, make(version))
    Path(done).touch()


def load_until_done(kind: str, ready: str, done: str, result: str) -> None:
    """Loads and checks the output in a loop until the writer is done, and once more after."""
    name, _, version_of = KINDS[kind]
    catalog = project_catalog(Path.cwd())
    loads, versions, failures = 0, set(), []
    while True:
        finished = Path(done).exists()  # read first: the last load follows the last save
        try:
            versions.add(version_of(catalog.load(name)))
        except Exception as error:  # noqa: BLE001 - every failure is the finding
            failures.append(f"{type(error).__name__}: {error}"[:500])
        loads += 1
        if loads == 1:
            Path(ready).touch()
        if finished:
            break
    last = version_of(catalog.load(name))
    report = {"loads": loads, "versions": sorted(versions), "failures": failures, "last": last}
    Path(result).write_text(json.dumps(report))


def save_large_frame(rows: int) -> None:
    """Saves a frame big enough that its save takes a while (the victim of a SIGKILL)."""
    frame = pd.DataFrame(np.random.default_rng(0).random((rows, 4)), columns=list("abcd"))
    frame["name"] = pd.Series(np.arange(rows)).astype(str).radd("phone-")
    project_catalog(Path.cwd()).save("train_split", frame)


def _wait_for(path: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while not path.exists():
        if time.monotonic() > deadline:
            raise TimeoutError(f"{path} did not appear in {timeout} s")
        time.sleep(0.005)


def _start(project: Path, call: str, log: Path) -> subprocess.Popen:
    code = f"from tests.test_atomic_saves import *; {call}"
    env = {**os.environ, "PYTHONPATH": str(PROJECT_ROOT)}
    with log.open("w") as output:  # a file, not a pipe: 200 saves log more than a pipe holds
        return subprocess.Popen(
            [sys.executable, "-c", code], cwd=project, env=env, stdout=output, stderr=output
        )


def _partials(target: Path) -> list[Path]:
    return sorted(target.parent.glob(f".{target.name}.*.partial{target.suffix}"))


# ---- tests --------------------------------------------------------------------------------


@pytest.mark.parametrize("kind", ["split", "model"])
def test_a_reader_never_sees_part_of_a_file_saved_200_times(
    project_copy, tmp_path, monkeypatch, kind
):
    name, make, _ = KINDS[kind]
    monkeypatch.chdir(project_copy)
    catalog = project_catalog(project_copy)
    catalog.save(name, make(0))
    ready, done, result = (str(tmp_path / f) for f in ("ready", "done", "result.json"))

    reader = _start(
        project_copy,
        f"load_until_done({kind!r}, {ready!r}, {done!r}, {result!r})",
        tmp_path / "reader.log",
    )
    writer = _start(
        project_copy,
        f"save_versions({kind!r}, {SAVES}, {ready!r}, {done!r})",
        tmp_path / "writer.log",
    )
    assert writer.wait(timeout=180) == 0, (tmp_path / "writer.log").read_text()[-3000:]
    assert reader.wait(timeout=60) == 0, (tmp_path / "reader.log").read_text()[-3000:]

    report = json.loads(Path(result).read_text())
    assert report["failures"] == [], report["failures"][:3]
    assert report["last"] == SAVES
    # The reader ran while the writer saved: it saw saves in between the first and the last.
    assert len(report["versions"]) > 2, report
    assert _partials(Path(catalog.get(name)._filepath)) == []


def test_a_writer_killed_mid_save_leaves_the_old_file_whole(project_copy, tmp_path, monkeypatch):
    monkeypatch.chdir(project_copy)
    catalog = project_catalog(project_copy)
    catalog.save("train_split", split_frame(1))
    target = Path(catalog.get("train_split")._filepath).resolve()

    writer = _start(project_copy, "save_large_frame(3_000_000)", tmp_path / "writer.log")
    try:
        deadline = time.monotonic() + 60
        while not _partials(target):  # the save has begun: its temporary file exists
            assert writer.poll() is None, (tmp_path / "writer.log").read_text()[-3000:]
            assert time.monotonic() < deadline, "the writer never started its save"
            time.sleep(0.001)
        os.kill(writer.pid, signal.SIGKILL)
    finally:
        writer.kill()
        writer.wait()

    [leftover] = _partials(target)
    assert split_version(catalog.load("train_split")) == 1  # the old file, never the leftover
    assert split_version(pd.read_parquet(target)) == 1

    catalog.save("train_split", split_frame(2))  # the next save removes the dead writer's file
    assert not leftover.exists()
    assert _partials(target) == []
    assert split_version(catalog.load("train_split")) == 2


def test_a_failed_save_leaves_the_old_file_and_no_temporary_file(project_copy, monkeypatch):
    monkeypatch.chdir(project_copy)
    catalog = project_catalog(project_copy)
    catalog.save("train_split", split_frame(1))
    target = Path(catalog.get("train_split")._filepath)

    with pytest.raises(DatasetError):
        catalog.save("train_split", "not a frame")

    assert _partials(target) == []
    assert split_version(catalog.load("train_split")) == 1


def test_only_the_temporary_files_of_dead_writers_on_this_host_are_removed(tmp_path):
    target = tmp_path / "train_set.parquet"
    target.write_bytes(b"the target")

    def writer_name(code: str = "") -> tuple[subprocess.Popen, Path]:
        call = f"from neural_net_lab.datasets.atomic import partial_name as p; print(p({target.name!r}), flush=True); {code}"
        process = subprocess.Popen([sys.executable, "-c", call], stdout=subprocess.PIPE, text=True)
        path = tmp_path / process.stdout.readline().strip()
        path.write_bytes(b"part of a save")
        return process, path

    dead_process, dead = writer_name()
    dead_process.wait()
    live_process, live = writer_name("import time; time.sleep(120)")
    other_host = tmp_path / re.sub(r"-[0-9a-f]{8}-", "-00000000-", dead.name)
    other_host.write_bytes(b"a writer on another machine, sharing the folder")
    own = tmp_path / partial_name(target.name)  # this process: perhaps another thread's save
    own.write_bytes(b"part of a save")
    other_target = tmp_path / dead.name.replace("train_set", "test_set")
    other_target.write_bytes(b"another target's")
    try:
        assert remove_abandoned_partials(target) == [dead]
    finally:
        live_process.kill()
        live_process.wait()
    assert not dead.exists()
    assert all(p.exists() for p in (live, other_host, own, other_target, target))
    assert dead.name.startswith(".train_set.parquet.") and dead.name.endswith(".partial.parquet")


@pytest.mark.parametrize("umask", [0o022, 0o077, 0o002])
def test_a_new_file_gets_the_mode_of_a_plain_save(tmp_path, umask):
    previous = os.umask(umask)
    try:
        JSONDataset(filepath=str(tmp_path / "plain.json")).save({"a": 1})
        AtomicDataset({"type": "json.JSONDataset", "filepath": str(tmp_path / "atomic.json")}).save(
            {"a": 1}
        )
    finally:
        os.umask(previous)
    assert _mode(tmp_path / "atomic.json") == _mode(tmp_path / "plain.json")


@pytest.mark.parametrize("mode", [0o640, 0o600, 0o664])
def test_an_existing_file_keeps_its_mode_as_in_a_plain_save(tmp_path, mode):
    plain, atomic = tmp_path / "plain.json", tmp_path / "atomic.json"
    for path in (plain, atomic):
        path.write_text("{}")
        path.chmod(mode)
    JSONDataset(filepath=str(plain)).save({"a": 1})
    AtomicDataset({"type": "json.JSONDataset", "filepath": str(atomic)}).save({"a": 1})
    assert _mode(atomic) == _mode(plain) == mode
    assert json.loads(atomic.read_text()) == {"a": 1}


def test_a_save_through_a_symbolic_link_replaces_the_file_it_points_to(tmp_path):
    shared = tmp_path / "shared" / "scaler.json"
    shared.parent.mkdir()
    shared.write_text("{}")
    link = tmp_path / "data" / "scaler.json"
    link.parent.mkdir()
    link.symlink_to(shared)

    AtomicDataset({"type": "json.JSONDataset", "filepath": str(link)}).save({"a": 1})

    assert link.is_symlink() and link.resolve() == shared
    assert json.loads(shared.read_text()) == {"a": 1}
    assert _partials(shared) == [] and _partials(link) == []


def test_an_mlflow_artifact_entry_logs_the_final_file(project_copy, client, monkeypatch):
    monkeypatch.chdir(project_copy)
    catalog = project_catalog(project_copy)
    report = {"0": {"precision": 0.5}, "accuracy": 0.5}

    with mlflow.start_run() as run:
        catalog.save("classification_report", report)

    assert isinstance(catalog.get("classification_report"), AtomicDataset)
    assert [a.path for a in client.list_artifacts(run.info.run_id)] == [
        "classification_report.json"
    ]
    logged = mlflow.artifacts.download_artifacts(
        run_id=run.info.run_id,
        artifact_path="classification_report.json",
        dst_path=str(project_copy),
    )
    assert json.loads(Path(logged).read_text()) == report
    local = project_copy / "data/08_reporting/classification_report.json"
    assert json.loads(local.read_text()) == report
    assert catalog.load("classification_report") == report
    assert _partials(local) == []


def test_every_entry_that_writes_a_local_file_is_wrapped(project_copy, monkeypatch):
    monkeypatch.chdir(project_copy)
    catalog = project_catalog(project_copy)
    expected = {
        "phone_prices": "data/01_raw/phone_prices.csv",
        "train_split": "data/03_primary/train_split.parquet",  # "{split}_split"
        "validation_set": "data/05_model_input/validation_set.parquet",  # "{name}_set"
        "new_market_test_split": "data/03_primary/new_market_test_split.parquet",
        "scaler": "data/06_models/scaler.json",
        "phone_price_model": "data/06_models/phone_price_model.pt",
        "transfer.fine_tune.model": "data/06_models/transfer_fine_tune_model.pt",
        "tuned_environment": "conf/tuned/parameters.yml",
        "confusion_matrix_plot": "data/08_reporting/confusion_matrix.png",  # inside MLflow's
        "optimizers_comparison": "data/08_reporting/optimizers_comparison.csv",
    }
    for name, path in expected.items():
        dataset = catalog.get(name)
        assert isinstance(dataset, AtomicDataset), name
        assert str(dataset._filepath) == path, name
        assert not hasattr(dataset, "_version"), name
        assert _source(dataset) == path, name  # the missing-input check reads the final path
    for name in ("tuning_study_storage", "training_metrics", "backprop_metrics"):
        assert not isinstance(catalog.get(name), AtomicDataset), name


def test_remote_versioned_and_pathless_entries_are_left_alone():
    entries = {
        "remote": {"type": "pandas.CSVDataset", "filepath": "s3://bucket/phones.csv"},
        "gcs": {"type": "pandas.ParquetDataset", "filepath": "gcs://bucket/phones.parquet"},
        "versioned": {"type": "pandas.CSVDataset", "filepath": "data/a.csv", "versioned": True},
        "memory": {"type": "MemoryDataset"},
        "journal": {"type": "x.OptunaStorageDataset", "path": "data/study.journal"},
    }
    assert wrap_local_files(entries) == entries

    local = {"type": "pandas.CSVDataset", "filepath": "file:///tmp/a.csv", "metadata": {"m": 1}}
    wrapped = wrap_local_files({"local": local})
    assert wrapped["local"] == {
        "type": "neural_net_lab.datasets.AtomicDataset",
        "dataset": {"type": "pandas.CSVDataset", "filepath": "file:///tmp/a.csv"},
        "metadata": {"m": 1},
    }
    assert wrap_local_files(wrapped) == wrapped  # a catalog round trip wraps nothing twice


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def test_the_context_catalog_of_notebooks_saves_atomically_too(project_copy):
    """``kedro ipython`` / notebooks use ``context.catalog``, which Kedro builds as a plain
    ``DataCatalog`` unless the project's context says otherwise; ``kedro catalog`` reads it."""
    bootstrap_project(project_copy)
    with KedroSession.create(project_path=project_copy) as session:
        catalog = session.load_context().catalog
        assert isinstance(catalog, AtomicSavesCatalog)
        assert isinstance(catalog.get("scaler"), AtomicDataset)
        catalog.save("scaler", {"features": ["ram"], "mean": [1.0], "scale": [2.0]})
        assert catalog.load("scaler")["mean"] == [1.0]
    listed = kedro_cli(project_copy, "catalog", "describe-datasets", "-p", "training")
    assert listed.returncode == 0, listed.stderr[-2000:]
    assert "phone_price_model" in listed.stdout
