"""Training speed: the project's loop against the lesson's loop, in one process.

Both train the default configuration (20→128→256→4, Adam lr 1e-3, batch 16, 100 epochs) on
the same standardized training rows of the shipped table, from the same initial weights and
with the same loss. The lesson's loop is written the way the lesson wrote it: TensorDataset +
DataLoader(shuffle=True), zero_grad / forward / CrossEntropyLoss / backward / step per batch
(without its Softmax bug, so that both optimize the same objective).

    python benchmarks/train_speed.py [--epochs 100] [--repeats 1]

Prints both times, ``ratio: N`` (lesson time / project time) and both test accuracies. The
lesson's loop runs with PyTorch's default thread count, as the lesson ran it; the project's
loop caps itself at one thread (tiny batches run faster so). ``ratio_one_thread`` compares
against the lesson's loop capped the same way, to show the gain that is not threading.
"""

from __future__ import annotations

import argparse
import copy
import time
from pathlib import Path

import pandas as pd
import torch
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neural_net_lab.engine import (
    Member,
    accuracy,
    build_mlp,
    predict_logits,
    seed_everything,
    train,
)
from neural_net_lab.engine.config import ColumnsParams, ModelParams, OptimizerParams, TrainingParams
from neural_net_lab.engine.data import to_tensors
from neural_net_lab.table import (
    DataProcessingParams,
    fit_scaler,
    split_data,
    standardize,
    validate_table,
)

ROOT = Path(__file__).resolve().parents[1]
COLUMNS = ColumnsParams(target="price_range")  # conf/base/parameters.yml; the rest is derived
MODEL = ModelParams(hidden_dims=[128, 256])  # the default network, its widths derived


def lesson_loop(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int
) -> None:
    """The lesson's training loop (minus its Softmax): DataLoader batches, autograd, Adam."""
    torch.manual_seed(seed)
    loader = DataLoader(TensorDataset(features, labels), batch_size=16, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    model.train()
    for _ in range(epochs):
        for batch, target in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(batch), target)
            loss.backward()
            optimizer.step()
    model.eval()


def lesson_one_thread(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int
) -> None:
    """The lesson's loop with PyTorch capped at one CPU thread, like the project's loop."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        lesson_loop(model, features, labels, epochs, seed)
    finally:
        torch.set_num_threads(threads)


def project_loop(
    model: nn.Module, features: torch.Tensor, labels: torch.Tensor, epochs: int, seed: int
) -> None:
    """The project's loop with the default training parameters."""
    training = TrainingParams(
        seed=seed,
        epochs=epochs,
        batch_size=16,
        optimizer=OptimizerParams(name="Adam", lr=1e-3),
        progress=False,
    )
    train([Member(model, features, labels, seed_everything(seed))], training)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument(
        "--repeats", type=int, default=1, help="alternating runs of each; best time counts"
    )
    args = parser.parse_args()

    params = DataProcessingParams(train_share=0.8, random_state=66, min_rows_per_class=10)
    validated, schema = validate_table(
        pd.read_csv(ROOT / "data/01_raw/phone_prices.csv"), COLUMNS, params, MODEL
    )
    train_split, test_split = split_data(validated, schema, params)
    scaler = fit_scaler(train_split, schema)
    x_train, y_train = to_tensors(
        standardize(train_split, scaler, schema), schema.inputs, schema.target
    )
    x_test, y_test = to_tensors(
        standardize(test_split, scaler, schema), schema.inputs, schema.target
    )

    seed_everything(42)
    model = schema.network(MODEL)  # the widths the table gives: 20 → 128 → 256 → 4
    initial = build_mlp(model.input_dim, model.hidden_dims, model.n_classes)
    results: dict[str, dict[str, float]] = {}
    loops = {"lesson": lesson_loop, "lesson_one_thread": lesson_one_thread, "project": project_loop}
    for _ in range(args.repeats):
        for name, loop in loops.items():
            model = copy.deepcopy(initial)
            started = time.perf_counter()
            loop(model, x_train, y_train, args.epochs, seed=42)
            seconds = time.perf_counter() - started
            best = results.get(name, {}).get("seconds", float("inf"))
            results[name] = {
                "seconds": min(seconds, best),
                "test_accuracy": accuracy(predict_logits(model, x_test), y_test),
            }

    print(
        f"rows: {len(x_train)} train, {len(x_test)} test; epochs: {args.epochs}; batch: 16; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads outside training"
    )
    for name in loops:
        print(
            f"{name}_loop_seconds: {results[name]['seconds']:.2f}  "
            f"{name}_test_accuracy: {results[name]['test_accuracy']:.4f}"
        )
    print(f"ratio: {results['lesson']['seconds'] / results['project']['seconds']:.2f}")
    print(
        f"ratio_one_thread: {results['lesson_one_thread']['seconds'] / results['project']['seconds']:.2f}"
    )


if __name__ == "__main__":
    main()
