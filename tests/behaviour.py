"""What the project computes, recorded so that a change of structure can show it changed no
number: every output file and every MLflow run's params and metrics after a fixed sequence of
runs (every pipeline at tiny settings, then a small seeded tuning study on one worker).

``python -m tests.behaviour OUT.json`` records into OUT.json (``--full``: the default run with
the shipped parameters first); ``test_behaviour.py`` runs the same sequence and compares.
Durations, dates, run ids, worker names and plots are left out: they differ between two runs
of unchanged code.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import math
import os
import re
import sys
import tempfile
from pathlib import Path
from typing import Any

import pandas as pd
import torch
import yaml

from .conftest import copy_project, mlflow_client, run_kedro
from .mlflow_params import RUNS
from .pipelines.tuning.conftest import tiny_blocks, write_local_parameters

RECORD = Path(__file__).parent / "data" / "behaviour.json"
VOLATILE = re.compile(
    r"duration|seconds|elapsed|datetime|timestamp|worker|run_id|_time$|^time$|started|finished",
    re.IGNORECASE,
)
# "84.1 s", "in 3.2 s", "(1.1 s)" in Markdown reports, and MLflow's model and run ids
SECONDS = re.compile(r"\d+(\.\d+)?\s?s\b|\bm-[0-9a-f]{32}\b|\b[0-9a-f]{32}\b")
# Files whose bytes depend on the clock or the renderer, not on the numbers.
SKIPPED = {".png", ".svg", ".html", ".journal", ".lock", ".db"}


def tuning_blocks() -> dict[str, Any]:
    """A seeded study that one worker repeats exactly: 4 trials, no timeout, two baselines."""
    blocks = tiny_blocks(n_trials=4, ensemble_seeds=2)
    blocks["tuning"]["dask"]["n_workers"] = 1
    baselines = blocks["tuning"]["baselines"]
    blocks["tuning"]["baselines"] = {
        "logistic_regression": {**baselines["logistic_regression"], "grid": {"C": [0.1, 10.0]}},
        "svc_rbf": {**baselines["svc_rbf"], "n_trials": 3},
    }
    return blocks


def _scrub(value: Any) -> Any:
    if isinstance(value, dict):
        return {
            str(key): _scrub(item) for key, item in value.items() if not VOLATILE.search(str(key))
        }
    if isinstance(value, list | tuple):
        return [_scrub(item) for item in value]
    if isinstance(value, str):
        return SECONDS.sub("<s>", value)
    return value


def _markdown(text: str) -> str:
    """The text with durations and ids masked, and table columns named like them blanked."""
    lines = text.splitlines()
    volatile: set[int] = set()
    for index, line in enumerate(lines):
        if not line.startswith("|"):
            volatile = set()
            continue
        cells = line.split("|")
        following = lines[index + 1] if index + 1 < len(lines) else ""
        if not volatile and set(following.replace("|", "").strip()) <= set("-: "):
            volatile = {i for i, cell in enumerate(cells) if VOLATILE.search(cell.strip())}
        lines[index] = "|".join(
            "<volatile>" if i in volatile else cell for i, cell in enumerate(cells)
        )
    return SECONDS.sub("<s>", "\n".join(lines))


def _frame(frame: pd.DataFrame) -> dict[str, Any]:
    """Small tables whole; large ones (the splits) by column sums and a digest of the text."""
    frame = frame[[column for column in frame.columns if not VOLATILE.search(str(column))]]
    columns: dict[str, Any] = {}
    for column in frame.columns:
        values = frame[column]
        if len(frame) <= 50:
            columns[str(column)] = values.astype(object).where(values.notna(), None).tolist()
        elif pd.api.types.is_numeric_dtype(values):
            numbers = values.astype(float)
            columns[str(column)] = [float(numbers.sum()), float(numbers.abs().sum())]
        else:
            joined = "\n".join(values.astype(str))
            columns[str(column)] = hashlib.sha256(joined.encode()).hexdigest()
    return {"shape": list(frame.shape), "columns": columns}


def _tensors(path: Path) -> dict[str, Any]:
    state = torch.load(path, map_location="cpu", weights_only=True)
    if isinstance(state, torch.Tensor):
        state = {"": state}
    return {
        key: [list(tensor.shape), float(tensor.double().sum()), float(tensor.double().abs().sum())]
        for key, tensor in sorted(state.items())
    }


def outputs(project: Path) -> dict[str, Any]:
    """Every file the runs wrote under data/ and conf/, as comparable values."""
    found: dict[str, Any] = {}
    for folder in ("data", "conf/tuned"):
        for path in sorted((project / folder).rglob("*")):
            rel = path.relative_to(project).as_posix()
            if path.is_dir() or rel.startswith("data/01_raw/") or path.name.startswith("."):
                continue
            suffix = path.suffix
            if suffix in SKIPPED:
                found[rel] = "present"
            elif suffix == ".json":
                found[rel] = _scrub(json.loads(path.read_text()))
            elif suffix in (".yml", ".yaml"):
                found[rel] = _scrub(yaml.safe_load(path.read_text()))
            elif suffix == ".csv":
                found[rel] = _frame(pd.read_csv(path))
            elif suffix == ".parquet":
                found[rel] = _frame(pd.read_parquet(path))
            elif suffix == ".pt":
                found[rel] = _tensors(path)
            else:
                found[rel] = _markdown(path.read_text())
    return found


def tracked() -> dict[str, Any]:
    """Every MLflow run's params and metrics, '<parent name>/<run name>' → sorted list."""
    client = mlflow_client()
    experiment = client.get_experiment_by_name("neural_net_lab")
    runs = client.search_runs([experiment.experiment_id], max_results=5000)
    names = {run.info.run_id: run.info.run_name for run in runs}
    found: dict[str, list[Any]] = {}
    for run in runs:
        parent = names.get(run.data.tags.get("mlflow.parentRunId"), "")
        entry = {
            "params": _scrub(dict(run.data.params)),
            "metrics": _scrub(dict(run.data.metrics)),
            "status": run.info.status,
        }
        found.setdefault(f"{parent}/{run.info.run_name}", []).append(entry)
    return {key: sorted(values, key=json.dumps) for key, values in sorted(found.items())}


def run_lesson(project: Path, full_default: bool = False) -> None:
    """Every pipeline at tiny settings (``full_default``: the shipped default run first)."""
    if full_default:
        run_kedro(project)
    for pipeline, params in RUNS:
        run_kedro(project, pipeline, params)


def run_tuning(project: Path) -> None:
    """A seeded study on one worker, then inference with its ensemble."""
    write_local_parameters(project, tuning_blocks())
    run_kedro(project, "tuning")
    run_kedro(project, "inference", {"inference.network": "tuned"})


def record(project: Path) -> dict[str, Any]:
    """What the runs so far left in ``project`` and in the MLflow store, as plain JSON."""
    found = {"outputs": outputs(project), "mlflow": tracked()}
    return json.loads(json.dumps(found, default=str))


def differences(expected: Any, actual: Any, where: str = "") -> list[str]:
    """Where two records differ; floats equal to 1e-5 relative. The last digits of float32
    sums move with the CPU's vector width, not with the code: the record made on an Intel Xeon
    (AVX-512) and the same code on an AMD EPYC differed in 3 of its numbers, all tensor sums of
    trained networks, by 1.2e-6 to 3.1e-6 relative."""
    if isinstance(expected, dict) and isinstance(actual, dict):
        found = [f"{where}/{key}: missing" for key in expected.keys() - actual.keys()]
        found += [f"{where}/{key}: new" for key in actual.keys() - expected.keys()]
        for key in sorted(expected.keys() & actual.keys()):
            found += differences(expected[key], actual[key], f"{where}/{key}")
        return found
    if isinstance(expected, list) and isinstance(actual, list):
        if len(expected) != len(actual):
            return [f"{where}: {len(expected)} items, now {len(actual)}"]
        return [
            line
            for index, (old, new) in enumerate(zip(expected, actual, strict=True))
            for line in differences(old, new, f"{where}[{index}]")
        ]
    if isinstance(expected, float | int) and isinstance(actual, float | int):
        if isinstance(expected, bool) or isinstance(actual, bool):
            return [] if expected == actual else [f"{where}: {expected!r} → {actual!r}"]
        same = math.isclose(expected, actual, rel_tol=1e-5, abs_tol=1e-9) or (
            math.isnan(expected) and math.isnan(actual)
        )
        return [] if same else [f"{where}: {expected!r} → {actual!r}"]
    return [] if expected == actual else [f"{where}: {expected!r} → {actual!r}"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("out", type=Path, nargs="?", default=RECORD)
    parser.add_argument("--full", action="store_true", help="the shipped default run first")
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        project = copy_project(Path(tmp))
        os.environ["MLFLOW_TRACKING_URI"] = f"sqlite:///{Path(tmp) / 'mlflow.db'}"
        run_lesson(project, full_default=args.full)
        run_tuning(project)
        found = record(project)
    args.out.write_text(json.dumps(found, indent=1, sort_keys=True) + "\n")
    sys.stderr.write(f"{args.out}: {len(found['outputs'])} files, {len(found['mlflow'])} runs\n")


if __name__ == "__main__":
    main()
