"""A tuning study shared in PostgreSQL (the suite's throwaway server, ``postgres`` in
conftest): drivers' start-ups opening a fresh database at one moment, two real
``kedro run --pipelines tuning`` drivers at once on one study, and Optuna's heartbeats failing
the trial of a driver that died."""

from __future__ import annotations

import sys
import threading
import time

import optuna
import pytest

from neural_net_lab.engine.config import ModelParams, TrainingParams
from neural_net_lab.pipelines.tuning import study as studies
from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.pipelines.tuning.nodes import prepare_folds, run_study
from neural_net_lab.pipelines.tuning.storage import StudyStorageError, database_url

from .conftest import write_local_parameters
from .two_drivers import (
    run_pair,
    small_blocks,
    use_database,
)

RUNNING = optuna.trial.TrialState.RUNNING


def test_drivers_opening_a_fresh_database_at_the_same_moment_all_open_it(postgres):
    """Three drivers' start-ups open each of three fresh databases at the same moment (a
    barrier). Each opens the storage as a run does, on connections of its own: the race is
    between database sessions, so threads show it as processes do, in a fraction of the time.
    Optuna creates its tables unguarded; without the project's lock every one of ten such
    rounds lost a driver to IntegrityError (pg_type_typname_nsp_index) on a 2-core AMD EPYC.
    """
    for round_ in range(3):
        url = postgres(f"fresh_{round_}")
        barrier = threading.Barrier(3)
        outcomes: list[str] = []

        def start_up(url: str = url, barrier: threading.Barrier = barrier) -> None:
            barrier.wait(timeout=60)
            try:
                studies.open_storage({"url": url})
            except Exception as error:  # noqa: BLE001 - the test reads what went wrong
                outcomes.append(f"{type(error).__name__}: {error}"[:400])
            else:
                outcomes.append("opened")

        drivers = [threading.Thread(target=start_up) for _ in range(3)]
        for driver in drivers:
            driver.start()
        for driver in drivers:
            driver.join(timeout=120)
        assert outcomes == ["opened"] * 3, (round_, outcomes)


def test_two_drivers_at_once_share_one_study_in_postgres(postgres, project_copy, tmp_path):
    url = postgres("two_drivers")
    blocks = small_blocks()
    # Trials of a few tenths of a second, so that the two searches surely overlap.
    blocks["training"]["epochs"] = 100
    write_local_parameters(project_copy, blocks)
    use_database(project_copy, url)
    results = run_pair(project_copy, {"MLFLOW_TRACKING_URI": f"sqlite:///{tmp_path / 'mlflow.db'}"})
    for code, output in results:
        assert code == 0, output[-4000:]
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
    blocks = small_blocks(
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
