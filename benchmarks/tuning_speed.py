"""Tuning throughput: the same small study on a LocalCluster of 1 and of 2 Dask workers.

Every trial costs the same (only the learning rate and weight decay are searched; widths,
batch size and epochs are fixed, and no trial is pruned), so trials per minute measure how
well the trials spread over the workers. Each study runs the tuning pipeline's node
``run_study`` (with Kedro's runner, as the pipeline wires it) on the shipped table's training
split with a fresh journal file, without MLflow.

    python benchmarks/tuning_speed.py [--trials 16] [--epochs 60] [--folds 5]

Prints both wall times (cluster start included, as a user waits for it), both trial rates
and ``ratio: N`` = trials per minute with 2 workers / with 1 worker (target >= 1.6 on 2 cores).
"""

from __future__ import annotations

import argparse
import copy
import tempfile
import time
from pathlib import Path

import pandas as pd
import yaml
from kedro.io import DataCatalog, MemoryDataset
from kedro.runner import SequentialRunner

from neural_net_lab.engine.config import ColumnsParams, ModelParams, TrainingParams
from neural_net_lab.pipelines.tuning.config import TuningParams
from neural_net_lab.pipelines.tuning.pipeline import create_pipeline as tuning_pipeline
from neural_net_lab.table import DataProcessingParams, TableSchema, split_data, validate_table

ROOT = Path(__file__).resolve().parents[1]


def _parameters() -> dict:
    parameters = {}
    for name in (
        "parameters.yml",
        "parameters_data_processing.yml",
        "parameters_training.yml",
        "parameters_tuning.yml",
    ):
        parameters.update(yaml.safe_load((ROOT / "conf/base" / name).read_text()))
    return parameters


def run_nodes(names: tuple[str, ...], inputs: dict) -> dict:
    """The tuning pipeline's nodes ``names`` run on ``inputs`` in memory; their outputs."""
    nodes = tuning_pipeline().only_nodes(*names)
    catalog = DataCatalog({k: MemoryDataset(v, copy_mode="assign") for k, v in inputs.items()})
    return {k: dataset.load() for k, dataset in SequentialRunner().run(nodes, catalog).items()}


def study_seconds(
    blocks: dict, train_split: pd.DataFrame, schema: TableSchema, workers: int
) -> float:
    tuning = copy.deepcopy(blocks["tuning"])
    tuning["dask"].update(n_workers=workers, dashboard_address=None)
    with tempfile.TemporaryDirectory() as folder:
        tuning.update(study_name=f"speed_{workers}")
        typed = TuningParams.model_validate(tuning)
        model = ModelParams.model_validate(blocks["model"])
        training = TrainingParams.model_validate(blocks["training"])
        params = {"params:tuning": typed, "params:model": model, "params:training": training}
        folds = run_nodes(
            ("prepare_folds",), {"train_split": train_split, "table_schema": schema, **params}
        )
        started = time.perf_counter()
        study = run_nodes(
            ("run_study",),
            {**folds, **params, "tuning_study_storage": {"path": f"{folder}/journal.log"}},
        )
        seconds = time.perf_counter() - started
        trials = study["tuning_study_trials"]
    states = {t.state.name for t in trials}
    if states != {"COMPLETE"}:
        raise RuntimeError(f"every trial should complete, got states {states}")
    return seconds


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=60)
    parser.add_argument("--folds", type=int, default=5)
    args = parser.parse_args()

    blocks = _parameters()
    blocks["training"].update(epochs=args.epochs, progress=False)
    blocks["tuning"].update(
        folds=args.folds,
        n_trials=args.trials,
        timeout=None,
        pruner={"name": None},
        search_space={
            "training.optimizer.lr": {"type": "float", "low": 1e-4, "high": 1e-2, "log": True},
            "training.optimizer.weight_decay": {
                "type": "float",
                "low": 1e-6,
                "high": 1e-2,
                "log": True,
                "or_zero": True,
            },
        },
    )
    processing = DataProcessingParams.model_validate(blocks["data_processing"])
    columns = ColumnsParams.model_validate(blocks["columns"])
    model = ModelParams.model_validate(blocks["model"])
    raw = pd.read_csv(ROOT / "data/01_raw/phone_prices.csv")
    validated, schema = validate_table(raw, columns, processing, model)
    train_split, _ = split_data(validated, schema, processing)

    one = study_seconds(blocks, train_split, schema, 1)
    two = study_seconds(blocks, train_split, schema, 2)
    rate_one, rate_two = args.trials / one * 60, args.trials / two * 60
    lines = [
        f"{args.trials} trials ({args.folds} folds, {args.epochs} epochs each)",
        f"1 worker:  {one:.1f} s ({rate_one:.1f} trials/min)",
        f"2 workers: {two:.1f} s ({rate_two:.1f} trials/min)",
        f"ratio: {rate_two / rate_one:.2f}",
    ]
    print("\n".join(lines))  # noqa: T201 (a benchmark reports on stdout)


if __name__ == "__main__":
    main()
