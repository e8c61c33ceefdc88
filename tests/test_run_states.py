"""MLflow run states that say what happened: a real `kedro run` stopped by SIGINT (Ctrl-C) or
SIGTERM ends its runs KILLED and leaves the files of earlier runs intact; an exception ends the
Kedro run and the open child run FAILED."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from neural_net_lab import variants
from neural_net_lab.hooks import RunInterrupted, RunStateHooks

from .conftest import FAST_TRAINING, PROJECT_ROOT, mlflow_client, run_kedro

# Enough epochs that the signal always arrives during training.
ENDLESS = "training.epochs=100000,training.progress=False"


def _runs(name: str | None = None) -> list:
    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    runs = client.search_runs([experiment.experiment_id], max_results=1000)
    return [run for run in runs if name is None or run.info.run_name == name]


def _children(parent) -> list:
    return [run for run in _runs() if run.data.tags.get("mlflow.parentRunId") == parent.info.run_id]


def _interrupt(project: Path, args: list[str], started: str, signum: int) -> str:
    """Runs `kedro run <args>` in ``project``, sends ``signum`` once a log line contains
    ``started`` (and a moment more, so that the node is working), returns its stderr."""
    process = subprocess.Popen(
        [sys.executable, "-m", "kedro", "run", *args],
        cwd=project,
        # The project's one-line log format (the copy has no conf/logging.yml).
        env={**os.environ, "KEDRO_LOGGING_CONFIG": str(PROJECT_ROOT / "conf" / "logging.yml")},
        stderr=subprocess.PIPE,
        stdout=subprocess.DEVNULL,
        text=True,
    )
    watchdog = threading.Timer(300, process.kill)  # a hung run fails the test, not the suite
    watchdog.start()
    lines = []
    try:
        for line in process.stderr:
            lines.append(line)
            if started in line:
                time.sleep(1.0)
                process.send_signal(signum)
                break
        lines += process.stderr.readlines()
        process.wait()
    finally:
        watchdog.cancel()
        if process.poll() is None:
            process.kill()
            process.wait()
    stderr = "".join(lines)
    assert started in stderr, f"the run ended before {started!r}:\n{stderr}"
    assert process.returncode != 0, stderr
    return stderr


def test_sigint_during_training_marks_the_run_killed_and_keeps_the_earlier_model(project_copy):
    run_kedro(project_copy, "data_processing")
    run_kedro(project_copy, "training", FAST_TRAINING)
    model = project_copy / "data" / "06_models" / "phone_price_model.pt"
    before = model.read_bytes()

    stderr = _interrupt(
        project_copy,
        ["--pipelines", "training", "--params", ENDLESS],
        "Running node: train_model",
        signal.SIGINT,
    )

    assert "run interrupted by SIGINT" in stderr
    finished, interrupted = sorted(_runs("training"), key=lambda run: run.info.start_time)
    assert finished.info.status == "FINISHED"
    assert interrupted.info.status == "KILLED"
    assert interrupted.info.end_time is not None
    assert model.read_bytes() == before


def test_sigterm_during_a_variant_marks_the_run_and_its_open_child_run_killed(project_copy):
    stderr = _interrupt(
        project_copy,
        ["--pipelines", "optimizers", "--params", ENDLESS],
        "train_variant",
        signal.SIGTERM,
    )

    assert "run interrupted by SIGTERM" in stderr
    (parent,) = _runs("optimizers")
    assert parent.info.status == "KILLED"
    children = _children(parent)
    assert children, "the signal came during a variant's training: its child run is open"
    assert {child.info.status for child in children} == {"KILLED"}


def test_an_exception_in_a_variant_marks_the_run_and_the_child_run_failed(
    project_copy, monkeypatch
):
    def broken(*args, **kwargs):
        raise RuntimeError("the variant's training broke")

    # The failure is injected into the trainer, inside the child run; what is checked is the
    # hooks' and MLflow's bookkeeping around it.
    monkeypatch.setattr(variants, "fit_classifier", broken)
    with pytest.raises(RuntimeError, match="training broke"):
        run_kedro(project_copy, "optimizers", FAST_TRAINING)

    (parent,) = _runs("optimizers")
    assert parent.info.status == "FAILED"
    children = _children(parent)
    assert [child.info.status for child in children] == ["FAILED"]


def test_signal_handlers_are_restored_after_a_run(project_copy):
    before = {sig: signal.getsignal(sig) for sig in (signal.SIGINT, signal.SIGTERM)}
    run_kedro(project_copy, "data_processing")
    assert {sig: signal.getsignal(sig) for sig in before} == before


def test_a_signal_during_a_dataset_save_waits_until_the_save_has_ended():
    hooks = RunStateHooks()
    default = signal.getsignal(signal.SIGINT)
    hooks.before_pipeline_run()
    try:
        hooks.before_dataset_saved()
        os.kill(os.getpid(), signal.SIGINT)  # Ctrl-C in the middle of writing a file
        time.sleep(0.1)  # the handler has run: the save goes on
        with pytest.raises(RunInterrupted, match="SIGINT"):
            hooks.after_dataset_saved()
    finally:
        hooks.after_pipeline_run()
    assert signal.getsignal(signal.SIGINT) == default
