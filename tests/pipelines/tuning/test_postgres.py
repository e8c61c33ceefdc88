"""A tuning study shared in PostgreSQL: a throwaway server from Debian's ``postgresql`` binaries
(``initdb`` and ``pg_ctl`` in a temporary folder, on a loopback port, trust authentication),
two real ``kedro run --pipelines tuning`` drivers at once on one study, and Optuna's
heartbeats failing the trial of a driver that died."""

from __future__ import annotations

import glob
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import optuna
import psycopg
import pytest
import yaml

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.pipelines.tuning import study as studies
from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.pipelines.tuning.nodes import prepare_folds, run_study
from neural_net_lab.pipelines.tuning.storage import StudyStorageError, database_url
from tests.conftest import PROJECT_ROOT

from .conftest import tiny_blocks, write_local_parameters

RUNNING = optuna.trial.TrialState.RUNNING


def _server_binaries() -> Path | None:
    """The folder of initdb and pg_ctl: on PATH, from pg_config, or Debian's layout."""
    candidates = [shutil.which("initdb")]
    if pg_config := shutil.which("pg_config"):
        bindir = subprocess.run(
            [pg_config, "--bindir"], capture_output=True, text=True, check=False
        )
        candidates.append(str(Path(bindir.stdout.strip()) / "initdb"))
    candidates += sorted(glob.glob("/usr/lib/postgresql/*/bin/initdb"), reverse=True)
    for initdb in filter(None, candidates):
        folder = Path(initdb).parent
        if (folder / "initdb").is_file() and (folder / "pg_ctl").is_file():
            return folder
    return None


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def postgres():
    """A PostgreSQL server of its own; yields a function that makes a database, its URL."""
    binaries = _server_binaries()
    if binaries is None:
        pytest.skip(
            "PostgreSQL server binaries (initdb, pg_ctl) not found: "
            "apt-get install postgresql (.ci/run does)"
        )
    # The server refuses to run as root: as root, its folder belongs to `postgres`, who runs
    # it. A folder under /tmp, not pytest's: root's pytest folders are closed to others.
    folder = Path(tempfile.mkdtemp(prefix="neural-net-lab-postgres-"))
    as_server: list[str] = []
    if os.geteuid() == 0:
        shutil.chown(folder, "postgres", "postgres")
        as_server = ["runuser", "-u", "postgres", "--"]
    data, port = folder / "data", _free_port()

    def server(*args: str) -> None:
        subprocess.run([*as_server, *args], check=True, capture_output=True, timeout=120)

    server(str(binaries / "initdb"), "-D", str(data), "-A", "trust", "-U", "postgres",
           "--no-sync", "-E", "UTF8", "--locale=C")  # fmt: skip
    settings = (
        f"-c listen_addresses=127.0.0.1 -p {port} -c unix_socket_directories={folder} "
        # A throwaway server: nothing to make durable.
        "-c fsync=off -c synchronous_commit=off -c full_page_writes=off"
    )
    try:
        server(str(binaries / "pg_ctl"), "-D", str(data), "-l", str(folder / "server.log"),
               "-o", settings, "-w", "-t", "60", "start")  # fmt: skip
    except subprocess.CalledProcessError:
        log = folder / "server.log"
        pytest.fail(f"PostgreSQL did not start: {log.read_text() if log.exists() else ''}")
    made = []

    def database(name: str) -> str:
        with psycopg.connect(
            f"host=127.0.0.1 port={port} user=postgres dbname=postgres", autocommit=True
        ) as connection:
            connection.execute(f'CREATE DATABASE "{name}"')
        made.append(name)
        return f"postgresql+psycopg://postgres@127.0.0.1:{port}/{name}"

    try:
        yield database
    finally:
        server(str(binaries / "pg_ctl"), "-D", str(data), "-m", "immediate", "stop")
        shutil.rmtree(folder, ignore_errors=True)


def _tiny(**changes):
    """Three trials on one worker, no timeout, one baseline: a tuning run of seconds."""
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


def test_two_drivers_at_once_share_one_study_in_postgres(postgres, project_copy, tmp_path):
    url = postgres("two_drivers")
    blocks = _tiny()
    # Trials of a few tenths of a second, so that the two searches surely overlap.
    blocks["training"]["epochs"] = 100
    write_local_parameters(project_copy, blocks)
    local = project_copy / "conf/local"
    # As docs/tuning.md tells users: the URL in credentials, the catalog entry naming it.
    (local / "credentials.yml").write_text(yaml.safe_dump({"tuning_study": {"url": url}}))
    (local / "catalog.yml").write_text(
        "tuning_study_storage:\n"
        "  type: neural_net_lab.pipelines.tuning.storage.OptunaStorageDataset\n"
        "  credentials: tuning_study\n"
    )
    shutil.copy(PROJECT_ROOT / "conf/logging.yml", project_copy / "conf/logging.yml")
    environ = {
        **os.environ,
        "MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}",
        "PYTHONWARNINGS": "ignore",
    }
    drivers = [
        subprocess.Popen(
            [sys.executable, "-m", "kedro", "run", "--pipelines", "tuning"],
            cwd=project_copy,
            env=environ,
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        for _ in range(2)
    ]
    outputs = [driver.communicate(timeout=300)[0] for driver in drivers]
    for driver, output in zip(drivers, outputs):
        assert driver.returncode == 0, output[-4000:]
        assert "3 trials in" in output, output[-4000:]

    study = optuna.load_study(study_name="test", storage=url)
    trials = study.get_trials()
    assert sorted(t.number for t in trials) == list(range(6)), [t.number for t in trials]
    assert {t.state.name for t in trials} <= {"COMPLETE", "FAIL", "PRUNED"}
    assert sum(t.state.name == "COMPLETE" for t in trials) >= 2
    # Each driver's own LocalCluster ran its trials; the two searches overlapped in time.
    spans = {}
    for trial in trials:
        start, end = trial.datetime_start, trial.datetime_complete
        first, last = spans.get(trial.user_attrs["worker"], (start, end))
        spans[trial.user_attrs["worker"]] = (min(first, start), max(last, end))
    assert len(spans) == 2, spans
    (a_start, a_end), (b_start, b_end) = spans.values()
    assert a_start < b_end and b_start < a_end, spans


@pytest.mark.filterwarnings("ignore:Heartbeat of storage:UserWarning")  # the simulated drivers
def test_a_trial_whose_driver_stopped_beating_is_failed_by_the_next_run(
    postgres, raw_phones, table_schema, monkeypatch
):
    url = postgres("heartbeats")
    blocks = _tiny(
        n_trials=1,
        heartbeat={"interval": 1, "grace_period": 2},
        search_space={"model.hidden_dims": {"type": "categorical", "choices": [[8]]}},
    )
    # A trial of seconds (about 2.5 s on a 2-core Xeon), longer than the heartbeat interval.
    blocks["training"]["epochs"] = 1000
    tuning = TuningParams.model_validate(blocks["tuning"])
    training = TrainingParams.model_validate(blocks["training"])
    rows = raw_phones.sample(400, random_state=0).reset_index(drop=True)
    cv_data, model = prepare_folds(
        rows, table_schema, tuning, ModelParams.model_validate(blocks["model"]), training
    )
    data = {k: cv_data[k] for k in ("features", "labels", "folds")}
    beats: dict[int, list[float]] = {}
    record = optuna.storages.RDBStorage.record_heartbeat

    def recorded(self, trial_id):
        beats.setdefault(trial_id, []).append(time.time())
        record(self, trial_id)

    monkeypatch.setattr(optuna.storages.RDBStorage, "record_heartbeat", recorded)

    # A driver on another machine: its trial got a heartbeat when asked, as the project's
    # drivers give one, then the driver was killed and never beat again.
    storage = studies.open_storage({"url": url}, tuning.heartbeat)
    print_ = studies.fingerprint(data, tuning, model, training)
    study = studies.load_study(storage, tuning, print_, create=True)
    study_id = storage.get_study_id_from_name("test")

    def trial_id(number: int) -> int:
        return storage.get_trial_id_from_study_id_trial_number(study_id, number)

    dead = study.ask()
    storage.record_heartbeat(trial_id(dead.number))
    # Another driver, alive: it beats for its trial all along.
    live = study.ask()
    stop = threading.Event()

    def beat() -> None:
        while not stop.is_set():
            storage.record_heartbeat(trial_id(live.number))
            stop.wait(0.3)

    beating = threading.Thread(target=beat)
    beating.start()
    try:
        time.sleep(tuning.heartbeat.grace_period + 0.5)
        trials, _ = run_study(
            cv_data=cv_data, storage={"url": url}, tuning=tuning, model=model, training=training
        )
    finally:
        stop.set()
        beating.join()
    states = {t.number: t.state.name for t in trials}
    assert states[dead.number] == "FAIL"
    assert states[live.number] == "RUNNING"  # its heartbeats kept it alive
    study.tell(live, state=optuna.trial.TrialState.FAIL)
    (ran,) = [t for t in trials if t.number not in (dead.number, live.number)]
    assert ran.state.name == "COMPLETE"

    # The run beat for its trial when it asked for it (Optuna never fails a trial that has
    # no beat) and then at least every interval while it waited for the worker's result.
    times = [*beats[trial_id(ran.number)], ran.user_attrs["finished"]]
    gaps = [b - a for a, b in zip(times, times[1:])]
    assert max(gaps) < tuning.heartbeat.interval + 0.5, (gaps, ran.user_attrs["started"])


def test_a_missing_driver_and_a_wrong_url_are_named_without_the_password(monkeypatch):
    assert database_url("postgresql+psycopg://u:pw@db/optuna").startswith("postgresql+psycopg")
    with pytest.raises(StudyStorageError, match="SQLAlchemy knows no database 'postgres'") as e:
        database_url("postgres://u:SECRET@db/optuna")
    assert "SECRET" not in str(e.value)
    monkeypatch.setitem(sys.modules, "psycopg", None)  # as if the extra were not installed
    monkeypatch.setitem(sys.modules, "psycopg2", None)
    with pytest.raises(StudyStorageError, match=r"pip install -e '\.\[postgres\]'") as e:
        database_url("postgresql://u:SECRET@db/optuna")
    assert "SECRET" not in str(e.value) and "URL postgresql://u:***@db/optuna" in str(e.value)
