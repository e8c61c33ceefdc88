"""Whole-run speed: the default `kedro run` against the lesson's bare script, as processes.

Both run on the shipped phone table, as separate processes on the same machine, alternately,
``--repeats`` times each after ``--warm-ups`` untimed runs each (default 1: the first run of a
fresh copy creates the MLflow store and Matplotlib's font cache):

- ``kedro run`` (data_processing + training + evaluation: validation, the split, the scaler,
  training with per-epoch validation, MLflow tracking, the served model logged and
  registered, the reports and plots) in a temporary copy of the project with its own MLflow
  store, so the working copy's outputs and runs are untouched;
- the lesson's script, written the lesson's way (``python benchmarks/run_speed.py lesson``):
  pandas read, StandardScaler on all rows, stratified 80/20 split (random state 66),
  TensorDataset + DataLoader (batch 16, shuffled), the 20→128→256→4 LeakyReLU MLP, Adam 1e-3,
  the loss printed every epoch, test accuracy at the end; no tracking, no files written.

    python benchmarks/run_speed.py [--repeats 5] [--epochs 100] [--warm-ups 1]

The smallest run (``--repeats 1 --epochs 1 --warm-ups 0``, what the tests run) checks that
both processes still start and finish; its times include that first-run setup.

Prints each run's seconds, the medians, the median time from the command to Kedro's first
node, and ``ratio: N`` (lesson script / kedro run; above 1 means the tracked pipeline is the
faster). Measure on a quiet machine: the two compete for the same cores.
"""

from __future__ import annotations

import argparse
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import pandas as pd
import torch
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

ROOT = Path(__file__).resolve().parents[1]
TABLE = ROOT / "data" / "01_raw" / "phone_prices.csv"
FIRST_NODE = "Running node:"


def lesson(table: Path, epochs: int) -> None:
    """The lesson's script (without its Softmax before CrossEntropyLoss)."""
    data = pd.read_csv(table)
    features = data.drop(columns=["price_range"]).to_numpy()
    labels = data["price_range"].to_numpy()
    features = StandardScaler().fit_transform(features)
    x_train, x_test, y_train, y_test = train_test_split(
        features, labels, test_size=0.2, stratify=labels, random_state=66
    )
    train_loader = DataLoader(
        TensorDataset(torch.tensor(x_train, dtype=torch.float32), torch.tensor(y_train)),
        batch_size=16,
        shuffle=True,
    )
    model = nn.Sequential(
        nn.Linear(20, 128),
        nn.LeakyReLU(),
        nn.Linear(128, 256),
        nn.LeakyReLU(),
        nn.Linear(256, 4),
    )
    loss_fn = nn.CrossEntropyLoss()
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    for epoch in range(epochs):
        total = 0.0
        for batch, target in train_loader:
            optimizer.zero_grad()
            loss = loss_fn(model(batch), target)
            loss.backward()
            optimizer.step()
            total += loss.item()
        print(f"epoch {epoch + 1}: loss {total / len(train_loader):.4f}")  # noqa: T201 (the lesson's)
    with torch.no_grad():
        predicted = model(torch.tensor(x_test, dtype=torch.float32)).argmax(dim=1)
    print(f"test accuracy: {(predicted.numpy() == y_test).mean():.4f}")  # noqa: T201


def project_copy(folder: Path) -> Path:
    """The project's configuration and raw data in ``folder``; the code is the installed
    package, as in the tests."""
    project = folder / "project"
    (project / "src").mkdir(parents=True)
    shutil.copy(ROOT / "pyproject.toml", project / "pyproject.toml")
    shutil.copytree(ROOT / "conf" / "base", project / "conf" / "base")
    (project / "conf" / "local").mkdir()
    shutil.copytree(ROOT / "data" / "01_raw", project / "data" / "01_raw")
    return project


def timed(command: list[str], cwd: Path, env: dict[str, str]) -> tuple[float, float | None]:
    """Seconds from start to exit, and to the first line holding ``FIRST_NODE`` (None if none).

    Python writes stderr line by line even into a pipe, so a line is timed as it is written.
    """
    start = time.perf_counter()
    process = subprocess.Popen(
        command, cwd=cwd, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True
    )
    first_node, lines = None, []
    for line in process.stderr:
        lines.append(line)
        if first_node is None and FIRST_NODE in line:
            first_node = time.perf_counter() - start
    process.wait()
    seconds = time.perf_counter() - start
    if process.returncode:
        sys.exit(f"{' '.join(command)} failed:\n{''.join(lines[-30:])}")
    return seconds, first_node


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("mode", nargs="?", choices=["lesson"], help="run the lesson's script")
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--warm-ups", type=int, default=1, help="untimed runs of each first")
    args = parser.parse_args()
    if args.mode == "lesson":
        lesson(TABLE, args.epochs)
        return

    with tempfile.TemporaryDirectory() as folder:
        project = project_copy(Path(folder))
        env = {
            **os.environ,
            "MLFLOW_TRACKING_URI": f"sqlite:///{project / 'mlflow.db'}",
            "KEDRO_LOGGING_CONFIG": str(ROOT / "conf" / "logging.yml"),
        }
        kedro = [sys.executable, "-m", "kedro", "run"]
        if args.epochs != 100:
            kedro += ["--params", f"training.epochs={args.epochs}"]
        script = [sys.executable, str(Path(__file__).resolve()), "lesson"]
        script += ["--epochs", str(args.epochs)]

        for _ in range(args.warm_ups):  # creates the store and caches
            timed(kedro, project, env)
            timed(script, project, env)
        runs: dict[str, list[float]] = {"kedro run": [], "lesson script": []}
        first_nodes = []
        for repeat in range(args.repeats):
            seconds, first_node = timed(kedro, project, env)
            runs["kedro run"].append(seconds)
            first_nodes.append(first_node)
            runs["lesson script"].append(timed(script, project, env)[0])
            sys.stderr.write(
                f"repeat {repeat + 1}: kedro run {seconds:.2f} s (first node at "
                f"{first_node:.2f} s), lesson script {runs['lesson script'][-1]:.2f} s\n"
            )

    medians = {name: statistics.median(values) for name, values in runs.items()}
    lines = [f"epochs: {args.epochs}, repeats: {args.repeats}, cores: {os.cpu_count()}"]
    lines += [f"median {name}: {value:.2f} s" for name, value in medians.items()]
    lines.append(f"median time to the first node: {statistics.median(first_nodes):.2f} s")
    lines.append(f"ratio: {medians['lesson script'] / medians['kedro run']:.2f}")
    print("\n".join(lines))  # noqa: T201 (a benchmark reports on stdout)


if __name__ == "__main__":
    main()
