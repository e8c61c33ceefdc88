"""A normal `kedro run` prints no third-party warnings and no progress bars of MLflow's; the
filters are narrow, so other warnings (the project's own) still show."""

from __future__ import annotations

import re
import subprocess
import sys

from .conftest import PROJECT_ROOT, kedro_cli

# How the warnings module prints one: "<file>:<line>: <Category>: <message>".
WARNING_LINE = re.compile(r"^(?P<file>\S+\.py):\d+: (?P<category>\w*Warning): ", re.MULTILINE)


def test_the_default_run_prints_no_third_party_warning(project_copy):
    logging_config = str(PROJECT_ROOT / "conf" / "logging.yml")
    run = kedro_cli(
        project_copy,
        "run",
        "--params",
        "training.epochs=1",
        env={"KEDRO_LOGGING_CONFIG": logging_config},
    )
    assert run.returncode == 0, run.stderr
    assert "Running node: score_network" in run.stderr  # the whole default run
    third_party = [
        match.group(0)
        for match in WARNING_LINE.finditer(run.stderr)
        if "site-packages" in match["file"] or "neural_net_lab" not in match["file"]
    ]
    assert third_party == [], run.stderr
    assert "Downloading artifacts" not in run.stderr
    assert "Traceback" not in run.stderr


def test_other_warnings_still_show():
    code = (
        "import warnings, neural_net_lab.settings\n"
        "warnings.warn('a warning of the project', UserWarning)\n"
        "warnings.warn('register_new_resolver is not the only UserWarning', UserWarning)\n"
    )
    run = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, cwd=PROJECT_ROOT
    )
    assert "UserWarning: a warning of the project" in run.stderr
    assert "UserWarning: register_new_resolver is not the only UserWarning" in run.stderr
