"""Tuning drivers as real ``kedro run --pipelines tuning`` processes, as a user runs them:
helpers for the tests (start, watch, stop), and a script that starts two at once on one
study, over and over, to count how often the pair holds.

    python -m tests.pipelines.tuning.two_drivers --storage postgres --runs 20 --trials 8
    python -m tests.pipelines.tuning.two_drivers --storage journal --runs 20 --trials 3

Each repeat is a fresh project copy (its own journal, or a fresh database on one throwaway
PostgreSQL server) and a fresh MLflow store. A repeat holds when both drivers exit 0 and the
study holds 2 × ``--trials`` trials (the default configuration, enqueued by the first driver,
counts in that driver's budget), numbered without a gap, none left RUNNING. The logs of a
repeat that did not hold are kept in ``--keep`` (default: a folder under /tmp), so that the
exception can be read whole.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.conftest import PROJECT_ROOT, copy_project

from .conftest import tiny_blocks, write_local_parameters

TIMEOUT_S = 600
TRIAL_LINE = re.compile(r" trial \d+ (complete|pruned|fail):")


def small_blocks(**changes: Any) -> dict[str, Any]:
    """One worker, no timeout, one baseline of one setting: a tuning run of seconds."""
    settings = {
        "n_trials": 3,
        "ensemble_seeds": 1,
        "dask": {"n_workers": 1, "dashboard_address": None},
        "baselines": {
            "logistic_regression": {
                "estimator": "sklearn.linear_model.LogisticRegression",
                "grid": {"C": [1.0]},
            }
        },
    }
    return tiny_blocks(**{**settings, **changes})


def use_database(project: Path, url: str) -> None:
    """As docs/tuning.md tells users: the URL in credentials, the catalog entry naming it."""
    local = project / "conf/local"
    (local / "credentials.yml").write_text(yaml.safe_dump({"tuning_study": {"url": url}}))
    (local / "catalog.yml").write_text(
        "tuning_study_storage:\n"
        "  type: neural_net_lab.pipelines.tuning.storage.OptunaStorageDataset\n"
        "  credentials: tuning_study\n"
    )


def start_driver(
    project: Path, env: Mapping[str, str], *args: str, output: Any = subprocess.PIPE, **popen: Any
) -> subprocess.Popen:
    """``kedro run --pipelines tuning <args>`` in ``project`` with the project's logging: its
    console to ``output`` (a pipe by default), its per-trial lines to logs/tuning.log."""
    shutil.copy(PROJECT_ROOT / "conf/logging.yml", project / "conf/logging.yml")
    return subprocess.Popen(
        [sys.executable, "-m", "kedro", "run", "--pipelines", "tuning", *args],
        cwd=project,
        env={**os.environ, "PYTHONWARNINGS": "ignore", "KEDRO_DISABLE_TELEMETRY": "true", **env},
        stdout=output,
        stderr=subprocess.STDOUT,
        text=True,
        **popen,
    )


def slow_blocks(**changes: Any) -> dict[str, Any]:
    """Trials of most of a second (about 0.75 s on a 2-core Xeon; no diverging optimizer),
    one worker, a budget that lasts: a signal sent just after a trial is asked for lands in
    the middle of it."""
    space = {"model.hidden_dims": {"type": "categorical", "choices": [[8], [16, 8]]}}
    blocks = small_blocks(**{"n_trials": 40, "search_space": space, **changes})
    blocks["training"]["epochs"] = 300
    return blocks


def start_in_session(project: Path, output: Path) -> subprocess.Popen:
    """A driver that runs the study only (``--to-nodes run_study``), in a session of its own:
    a terminal's Ctrl-C reaches the whole foreground group, the driver and its Dask workers,
    and so does ``stop``."""
    with output.open("w") as out:
        return start_driver(
            project, {}, "--to-nodes", "run_study", output=out, start_new_session=True
        )


def wait_for_a_trial_line(project: Path, driver: subprocess.Popen, output: Path) -> None:
    """Until the driver has ended a trial (its line in logs/tuning.log)."""
    log = project / "logs/tuning.log"
    _wait(lambda: log.exists() and TRIAL_LINE.search(log.read_text()), driver, output)


def wait_for_a_running_trial(
    driver: subprocess.Popen, output: Path, trials: Callable[[], list[Any]]
) -> None:
    """Until the driver holds a trial (RUNNING, marked with its pid) among ``trials()``."""
    _wait(lambda: any(held_by(t, driver.pid) for t in trials()), driver, output)


def held_by(trial: Any, pid: int) -> bool:
    driver = trial.user_attrs.get("driver") or {}
    return trial.state.name == "RUNNING" and driver.get("pid") == pid


def stop(driver: subprocess.Popen, signum: int) -> None:
    """``signum`` to the driver's whole process group; waits for the driver."""
    os.killpg(driver.pid, signum)
    try:
        driver.wait(timeout=120)
    finally:
        if driver.poll() is None:
            os.killpg(driver.pid, signal.SIGKILL)
            driver.wait()


def _wait(condition: Callable[[], Any], driver: subprocess.Popen, output: Path) -> None:
    deadline = time.monotonic() + 180
    while not condition():
        if driver.poll() is not None or time.monotonic() > deadline:
            pytest.fail(f"the run ended, or did not get that far:\n{output.read_text()[-3000:]}")
        time.sleep(0.05)


def run_pair(project: Path, env: Mapping[str, str]) -> list[tuple[int, str]]:
    """Both drivers started at once; their exit codes and whole outputs."""
    drivers = [start_driver(project, env) for _ in range(2)]
    outputs = [driver.communicate(timeout=TIMEOUT_S)[0] for driver in drivers]
    return [(driver.returncode, output) for driver, output in zip(drivers, outputs)]


def _study_trials(storage: str | Path) -> list[Any]:
    import optuna  # noqa: PLC0415 - the tests import this module; the script's only use

    if isinstance(storage, Path):
        storage = optuna.storages.JournalStorage(
            optuna.storages.journal.JournalFileBackend(str(storage))
        )
    return optuna.load_study(study_name="test", storage=storage).get_trials(deepcopy=False)


def _repeat(index: int, storage_kind: str, trials: int, database: Any, keep: Path) -> bool:
    with tempfile.TemporaryDirectory(prefix="two-drivers-") as folder:
        project = copy_project(Path(folder))
        blocks = small_blocks(n_trials=trials)
        # Trials of a few tenths of a second, so that the two searches surely overlap.
        blocks["training"]["epochs"] = 100
        write_local_parameters(project, blocks)
        if storage_kind == "postgres":
            storage: str | Path = database(f"repeat_{index}_{time.time_ns()}")
            use_database(project, storage)
        else:
            storage = project / "data/07_model_output/tuning_study.journal"
        env = {"MLFLOW_TRACKING_URI": f"sqlite:///{Path(folder) / 'mlflow.db'}"}
        started = time.perf_counter()
        results = run_pair(project, env)
        seconds = time.perf_counter() - started
        codes = [code for code, _ in results]
        try:
            found = _study_trials(storage)
            numbers = sorted(t.number for t in found)
            running = sum(t.state.name == "RUNNING" for t in found)
            defaults = sum(bool(t.user_attrs.get("default_configuration")) for t in found)
        except Exception as error:  # noqa: BLE001 - a study that cannot be read is a result
            numbers, running, defaults = [], -1, -1
            codes.append(f"{type(error).__name__}: {error}")
        held = codes == [0, 0] and numbers == list(range(2 * trials)) and running == 0
        print(  # noqa: T201 - the script reports on stdout
            f"run {index + 1}: {'held' if held else 'FAILED'}; exit codes {codes}, "
            f"{len(numbers)} trials, numbers unique {len(set(numbers)) == len(numbers)}, "
            f"{running} running, {defaults} default trial(s), {seconds:.1f} s",
            flush=True,
        )
        if not held:
            keep.mkdir(parents=True, exist_ok=True)
            for driver, (code, output) in enumerate(results):
                (keep / f"run{index + 1}_driver{driver}_exit{code}.log").write_text(output)
        return held


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--storage", choices=("postgres", "journal"), default="postgres")
    parser.add_argument("--runs", type=int, default=20)
    parser.add_argument("--trials", type=int, default=8, help="trials per driver")
    parser.add_argument("--keep", type=Path, default=None, help="folder for failed runs' logs")
    args = parser.parse_args(argv)
    keep = args.keep or Path(tempfile.mkdtemp(prefix="two-drivers-logs-"))
    with _server(args.storage) as database:
        held = sum(_repeat(i, args.storage, args.trials, database, keep) for i in range(args.runs))
    print(f"held: {held}/{args.runs}; failed: {args.runs - held}; logs of failures in {keep}")  # noqa: T201
    return 0 if held == args.runs else 1


def _server(kind: str) -> Any:
    import contextlib  # noqa: PLC0415

    if kind != "postgres":
        return contextlib.nullcontext(None)
    from .postgres_server import postgres_server  # noqa: PLC0415 - psycopg: the script's only

    return postgres_server()


if __name__ == "__main__":
    sys.exit(main())
