"""A run of the installed package keeps its MLflow store with its data: the wheel is built and
installed into a fresh environment, run with ``python -m neural_net_lab --conf-source=conf`` in
a deployment folder, and ``mlflow.db`` and ``mlartifacts`` land in that folder, never inside the
environment."""

from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import mlflow

from neural_net_lab import settings

from .conftest import PROJECT_ROOT


def _environment_with_the_wheel(tmp_path: Path) -> Path:
    """A virtual environment holding the project's wheel; the dependencies come from the test's
    own environment through a .pth line, which (unlike a site directory) does not bring the
    editable install of the source checkout with it."""
    source = tmp_path / "source"  # setuptools builds in the source tree: not the working copy's
    source.mkdir()
    for name in ("pyproject.toml", "README.md"):
        shutil.copy(PROJECT_ROOT / name, source / name)
    shutil.copytree(
        PROJECT_ROOT / "src", source / "src", ignore=shutil.ignore_patterns("*.egg-info")
    )
    wheels = tmp_path / "wheels"
    pip = [sys.executable, "-m", "pip"]
    options = ["--no-deps", "--no-index", "--quiet"]
    subprocess.run(
        [*pip, "wheel", *options, "--no-build-isolation", "-w", wheels, source], check=True
    )

    venv = tmp_path / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--without-pip", venv], check=True)
    python = venv / "bin" / "python"
    (venv_site,) = (venv / "lib").glob("python*/site-packages")
    (venv_site / "_dependencies.pth").write_text("\n".join(site.getsitepackages()) + "\n")
    (wheel,) = wheels.glob("neural_net_lab-*.whl")
    subprocess.run([python, *pip[1:], "install", *options, wheel], check=True)
    return python


def test_a_packaged_run_keeps_its_store_in_the_deployment_folder(tmp_path):
    python = _environment_with_the_wheel(tmp_path)
    deployment = tmp_path / "deployment"
    shutil.copytree(PROJECT_ROOT / "conf" / "base", deployment / "conf" / "base")
    (deployment / "conf" / "local").mkdir()
    shutil.copytree(PROJECT_ROOT / "data" / "01_raw", deployment / "data" / "01_raw")
    env = {key: value for key, value in os.environ.items() if not key.startswith("MLFLOW_")}
    env |= {"KEDRO_DISABLE_TELEMETRY": "true", "MLFLOW_DISABLE_TELEMETRY": "true"}
    env.pop("PYTHONPATH", None)

    where = subprocess.run(
        [python, "-c", "import neural_net_lab; print(neural_net_lab.__file__)"],
        env=env,
        capture_output=True,
        text=True,
        check=True,
    )
    assert Path(where.stdout.strip()).is_relative_to(tmp_path / "venv"), "not the wheel"

    command = [python, "-m", "neural_net_lab", "--conf-source=conf"]
    command += ["--pipelines", "data_processing", "--params", "data_processing.train_share=0.75"]
    run = subprocess.run(
        command, check=False, cwd=deployment, env=env, capture_output=True, text=True
    )
    assert run.returncode == 0, run.stderr

    assert (deployment / "data" / "05_model_input" / "train_set.parquet").is_file()
    assert (deployment / "mlflow.db").is_file()
    assert not list((tmp_path / "venv").rglob("mlflow.db"))
    assert not list((tmp_path / "venv").rglob("mlartifacts"))
    client = mlflow.MlflowClient(tracking_uri=f"sqlite:///{deployment / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("neural_net_lab")
    assert experiment.artifact_location == (deployment / "mlartifacts").as_uri()
    (logged,) = client.search_runs([experiment.experiment_id])
    assert logged.info.status == "FINISHED"
    assert logged.data.params["data_processing.train_share"] == "0.75"


def test_the_source_checkout_keeps_its_store_at_the_project_root_from_any_folder(
    tmp_path, monkeypatch
):
    monkeypatch.chdir(tmp_path)
    assert settings.CONFIG_LOADER_ARGS["custom_resolvers"]["project_root"]() == str(PROJECT_ROOT)
