"""An input file that exists but does not load (empty, cut short, not of its format) stops a
real Kedro run with a DamagedInputError naming the dataset, the file, the cause, and the
command that rewrites it (or, for a file no pipeline writes, to restore it)."""

from __future__ import annotations

import shutil
from collections.abc import Callable
from pathlib import Path

import pytest

from neural_net_lab.datasets import DamagedInputError

from .conftest import FAST_TRAINING, copy_project, run_kedro


def _truncate(path: Path) -> None:
    path.write_bytes(path.read_bytes()[: path.stat().st_size // 2])


def _empty(path: Path) -> None:
    path.write_bytes(b"")


def _text(path: Path) -> None:
    path.write_text("not a checkpoint: a note saved under the model's name\n")


@pytest.fixture(scope="module")
def trained_project(tmp_path_factory) -> Path:
    """A project copy after one default run (data_processing, training, evaluation)."""
    project = copy_project(tmp_path_factory.mktemp("trained"))
    with pytest.MonkeyPatch.context() as patch:
        patch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{project.parent / 'mlflow.db'}")
        run_kedro(project, params=FAST_TRAINING)
    return project


@pytest.fixture
def project(trained_project, tmp_path, monkeypatch) -> Path:
    """A copy of the trained project for one test to damage, with its own MLflow store."""
    copy = tmp_path / "project"
    shutil.copytree(trained_project, copy)
    monkeypatch.setenv("MLFLOW_TRACKING_URI", f"sqlite:///{tmp_path / 'mlflow.db'}")
    return copy


# (file, damage, pipeline that reads it, the remedy the message gives)
CASES = [
    ("data/06_models/phone_price_model.pt", _truncate, "inference", "--pipelines training`"),
    ("data/06_models/phone_price_model.pt", _empty, "inference", "--pipelines training`"),
    ("data/06_models/phone_price_model.pt", _text, "inference", "--pipelines training`"),
    ("data/06_models/scaler.json", _truncate, "inference", "--pipelines data_processing`"),
    ("data/05_model_input/train_set.parquet", _empty, "training", "--pipelines data_processing`"),
    (
        "data/05_model_input/test_set.parquet",
        _truncate,
        "evaluation",
        "--pipelines data_processing`",
    ),
    ("data/01_raw/phones_to_price.csv", _empty, "inference", "restore the file"),
]


@pytest.mark.parametrize(
    ("relative", "damage", "pipeline", "remedy"),
    CASES,
    ids=[f"{Path(c[0]).name}-{c[1].__name__.strip('_')}" for c in CASES],
)
def test_a_damaged_input_names_its_file_and_remedy(
    project: Path, relative: str, damage: Callable[[Path], None], pipeline: str, remedy: str
):
    damage(project / relative)

    with pytest.raises(DamagedInputError) as raised:
        run_kedro(project, pipeline, FAST_TRAINING)

    message = str(raised.value)
    assert relative in message
    assert remedy in message
    assert "does not load" in message
    if damage is _empty:
        assert "0 bytes" in message
    assert raised.value.path.as_posix().endswith(relative)
    assert "Please file an issue" not in message  # torch's advice for a file that is fine


def test_the_remedy_also_offers_the_default_run(project: Path):
    _empty(project / "data/06_models/scaler.json")

    with pytest.raises(DamagedInputError) as raised:
        run_kedro(project, "inference", FAST_TRAINING)

    message = str(raised.value)
    assert message.startswith("input 'scaler' (")
    assert "JSONDecodeError" in message
    assert "(or the default `kedro run`, which includes it)" in message
    assert raised.value.writers[0] == "data_processing"
