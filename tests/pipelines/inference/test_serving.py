"""The served model, logged by the training node: its contents, its errors, and
`mlflow models serve` answering on a loopback port like the batch pipeline."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path

import mlflow
import pandas as pd
import pytest

from neural_net_lab.pipelines.inference.nodes import price_phones, validate_phones_to_price
from neural_net_lab.serving import log_served, scaled_network
from tests.conftest import FEATURES

from .conftest import MODEL_PARAMS, SERVED, assert_same_predictions

MODEL_URI = "models:/phone_price_classifier/latest"
SERVE_STARTUP_LIMIT_S = 90


def batch_predictions(phones, model_inputs, model_state, schema) -> pd.DataFrame:
    validated = validate_phones_to_price(phones, schema)
    return price_phones(validated, model_inputs["scaler"], model_state, MODEL_PARAMS, schema)


def test_logged_model_has_signature_example_and_pinned_requirements(served_store, table_schema):
    info = mlflow.models.get_model_info(MODEL_URI)
    inputs = info.signature.inputs.input_names()
    assert inputs == [*FEATURES, "id"] == [*table_schema.features, "id"]
    assert info.signature.outputs.input_names() == [
        "id",
        "price_range",
        *(f"probability_{c}" for c in [0, 1, 2, 3]),
    ]
    assert info.saved_input_example_info is not None
    requirements = mlflow.pyfunc.get_model_dependencies(MODEL_URI)
    with open(requirements) as handle:
        pinned = handle.read().split()
    assert {r.split("==")[0] for r in pinned} == {"mlflow", "torch", "numpy", "pandas"}


def test_logged_model_refuses_bad_rows_naming_the_column(served_store, phones_to_price):
    model = mlflow.pyfunc.load_model(MODEL_URI)
    with pytest.raises(mlflow.MlflowException, match=r"missing inputs \['ram'\]"):
        model.predict(phones_to_price.drop(columns="ram"))
    with pytest.raises(ValueError, match="'clock_speed': 2"):
        model.predict(
            phones_to_price.assign(
                clock_speed=phones_to_price.clock_speed.where(phones_to_price.index > 1)
            )
        )


def test_nothing_is_logged_without_an_active_run(
    model_inputs, model_state, raw_phones, table_schema
):
    assert mlflow.active_run() is None
    network = scaled_network(model_inputs["scaler"], model_state, MODEL_PARAMS, table_schema)
    info = log_served(network, raw_phones, table_schema, SERVED)
    assert info == {"logged": False}


def _free_loopback_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _post(url: str, payload: dict) -> tuple[int, str]:
    request = urllib.request.Request(
        url, data=json.dumps(payload).encode(), headers={"Content-Type": "application/json"}
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.read().decode()


@contextlib.contextmanager
def mlflow_models_serve(model_uri: str, tracking_uri: str, log_path: Path) -> Iterator[str]:
    """Runs `mlflow models serve` on a free loopback port until it answers /ping; always stops it."""
    port = _free_loopback_port()
    base = f"http://127.0.0.1:{port}"
    with log_path.open("w") as log:
        server = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "mlflow",
                "models",
                "serve",
                "-m",
                model_uri,
                "--env-manager",
                "local",
                "--host",
                "127.0.0.1",
                "--port",
                str(port),
            ],
            env={**os.environ, "MLFLOW_TRACKING_URI": tracking_uri},
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,  # its own process group, so its uvicorn worker stops with it
        )
        try:
            deadline = time.monotonic() + SERVE_STARTUP_LIMIT_S
            while not _answers_ping(base):
                assert server.poll() is None, f"server exited: {log_path.read_text()[-3000:]}"
                assert time.monotonic() < deadline, f"no answer on {base}/ping in time"
                time.sleep(0.25)
            yield base
        finally:
            _stop_group(server)


def _stop_group(server: subprocess.Popen) -> None:
    """SIGTERM to the server's process group, SIGKILL if it lingers."""
    for sig, wait_s in ((signal.SIGTERM, 15), (signal.SIGKILL, 15)):
        try:
            os.killpg(server.pid, sig)
        except ProcessLookupError:
            break  # the whole group has already exited
        try:
            server.wait(timeout=wait_s)
            break
        except subprocess.TimeoutExpired:
            continue


def _answers_ping(base: str) -> bool:
    try:
        with urllib.request.urlopen(f"{base}/ping", timeout=2) as response:
            return response.status == 200
    except OSError:
        return False


def test_served_model_answers_like_the_batch_pipeline(  # noqa: PLR0917 - pytest fixtures
    served_store, phones_to_price, model_inputs, model_state, table_schema, tmp_path
):
    rows = phones_to_price.head(20)
    with mlflow_models_serve(MODEL_URI, served_store, tmp_path / "serve.log") as base:
        split = {"dataframe_split": rows.to_dict(orient="split", index=False)}
        status, body = _post(f"{base}/invocations", split)
        assert status == 200, body
        served = pd.DataFrame(json.loads(body)["predictions"])

        broken = {"dataframe_records": rows.drop(columns="ram").to_dict("records")}
        status, error = _post(f"{base}/invocations", broken)
        assert status == 400 and "ram" in error, error
    assert_same_predictions(
        served, batch_predictions(rows, model_inputs, model_state, table_schema)
    )
