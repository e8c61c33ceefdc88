"""Every script in benchmarks/ still runs: each one with its smallest arguments, as a user
starts it (a subprocess from the project root), and its result line is read back.

The figures of such short runs mean nothing; the docs quote full runs. What is tested is that
a script has not been broken by a change to the code it calls (train_speed.py once failed
on typed parameters and nobody noticed). Together these take about 40 s on 2 cores; most of
it is run_speed.py's two processes and tuning_speed.py's two Dask clusters.
"""

from __future__ import annotations

import re
import subprocess
import sys

import pytest

from tests.conftest import PROJECT_ROOT

RATIO = r"^ratio: (\d+\.\d+)$"
SCRIPTS = {
    "train_speed.py": (["--epochs", "1"], [RATIO, r"^ratio_one_thread: (\d+\.\d+)$"]),
    "cv_speed.py": (["--epochs", "1", "--folds", "2"], [RATIO]),
    # A whole `kedro run` and the lesson's script, once each, without warm-ups.
    "run_speed.py": (["--repeats", "1", "--epochs", "1", "--warm-ups", "0"], [RATIO]),
    # One LocalCluster of 1 worker, one of 2: the cluster starts are most of its time.
    "tuning_speed.py": (["--trials", "2", "--epochs", "1", "--folds", "2"], [RATIO]),
    "ensemble_seeds.py": (["--seeds", "2", "--members", "1,2", "--epochs", "1"], [RATIO]),
}


def _run(script: str, arguments: list[str]) -> str:
    result = subprocess.run(
        [sys.executable, str(PROJECT_ROOT / "benchmarks" / script), *arguments],
        cwd=PROJECT_ROOT,
        capture_output=True,
        text=True,
        timeout=300,
        check=False,  # a failure is reported with the script's stderr below
    )
    assert result.returncode == 0, f"{script} failed:\n{result.stderr[-3000:]}"
    return result.stdout


def test_every_script_in_benchmarks_is_tested():
    scripts = {path.name for path in (PROJECT_ROOT / "benchmarks").glob("*.py")}
    untested = sorted(scripts - {*SCRIPTS, "lesson_fixes.py"})
    assert not untested, f"give {untested} a small-argument run in tests/test_benchmarks.py"


@pytest.mark.parametrize("script", list(SCRIPTS))
def test_speed_benchmark_prints_its_ratio(script):
    arguments, patterns = SCRIPTS[script]
    output = _run(script, arguments)
    for pattern in patterns:
        found = re.search(pattern, output, re.MULTILINE)
        assert found, f"{script}: no line matching {pattern!r} in:\n{output}"
        assert float(found.group(1)) > 0


def test_lesson_fixes_prints_its_summary():
    output = _run("lesson_fixes.py", ["--epochs", "1"])
    found = re.search(
        r"^summary: softmax_accuracy_cost=(-?\d+\.\d+) leaked_scaler_shift=(\d+\.\d+) "
        r"graph_nodes_kept=(\d+) graph_nodes_detached=(\d+) pickle_refused=(True|False)$",
        output,
        re.MULTILINE,
    )
    assert found, f"no summary line in:\n{output}"
    _, shift, kept, detached, refused = found.groups()
    # The lesson's mistakes still show: a leak, a kept graph, a refused pickle.
    assert float(shift) > 0
    assert int(kept) > 100 and int(detached) == 0
    assert refused == "True"
