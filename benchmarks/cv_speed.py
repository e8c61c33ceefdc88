"""Cross-validation speed: the k folds trained one after another against one stacked training.

Five-fold cross-validation of the default configuration (20→128→256→4, Adam lr 1e-3, batch
16, 100 epochs) on the training split of the shipped table, folds stratified as the tuning
pipeline makes them, each fold with its own scaler and seed 42 + fold. "sequential" trains
each fold with ``engine.train``, one network after another (each one a stack of one);
"stacked" trains all five in one ``engine.train`` call, as one stack. Same process, one CPU
thread each (as a Dask worker runs them). Both run the same forward, backward and optimizer
code, so the ratio is what stacking saves per step, not a faster implementation.

    python benchmarks/cv_speed.py [--epochs 100] [--folds 5] [--repeats 1]

Prints both times, the largest weight difference between the two paths' trained networks,
both paths' per-fold final validation accuracies and ``ratio: N`` (sequential / stacked).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
from sklearn.model_selection import StratifiedKFold, train_test_split
from sklearn.preprocessing import StandardScaler

from neural_net_lab.engine import Member, build_mlp, seed_everything, train
from neural_net_lab.engine.config import ModelParams, TrainingParams

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data/01_raw/phone_prices.csv"
TARGET = "price_range"
MODEL = ModelParams(input_dim=20, hidden_dims=[128, 256], n_classes=4)


def fold_data(folds: int) -> list[tuple[torch.Tensor, ...]]:
    """The training split in stratified folds, each scaled by a scaler fit on its own rows:
    (training features, labels, validation features, labels) per fold.

    The split is data_processing's (stratified, 80 %, random state 66) on the shipped table,
    which needs no cleaning; the folds are the tuning pipeline's (``tuning.fold_seed`` 66).
    """
    table = pd.read_csv(RAW)
    train_split, _ = train_test_split(
        table, train_size=0.8, stratify=table[TARGET], random_state=66
    )
    features = train_split.drop(columns=[TARGET, "id"], errors="ignore").to_numpy(dtype=float)
    labels = train_split[TARGET].to_numpy(dtype=np.int64)
    data = []
    splitter = StratifiedKFold(folds, shuffle=True, random_state=66)
    for fit_rows, val_rows in splitter.split(features, labels):
        scaler = StandardScaler().fit(features[fit_rows])

        def scaled(rows, scaler=scaler):
            return torch.from_numpy(scaler.transform(features[rows]).astype(np.float32))

        data.append(
            (
                scaled(fit_rows),
                torch.from_numpy(labels[fit_rows]),
                scaled(val_rows),
                torch.from_numpy(labels[val_rows]),
            )
        )
    return data


def members(data: list[tuple[torch.Tensor, ...]], seed: int) -> list[Member]:
    """Fold f's network as a plain training with seed ``seed + f`` starts it."""
    made = []
    for f, (x, y, val_x, val_y) in enumerate(data):
        generator = seed_everything(seed + f)
        network = build_mlp(MODEL.input_dim, MODEL.hidden_dims, MODEL.n_classes)
        made.append(Member(network, x, y, generator, (val_x, val_y), name=f"fold {f}"))
    return made


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    parser.add_argument("--folds", type=int, default=5)
    parser.add_argument(
        "--repeats", type=int, default=1, help="alternating runs of each; best time counts"
    )
    args = parser.parse_args()

    training = TrainingParams(
        seed=42,
        epochs=args.epochs,
        batch_size=16,
        optimizer={"name": "Adam", "lr": 1e-3},
        threads=1,
        progress=False,
    )
    data = fold_data(args.folds)
    seconds = {"sequential": float("inf"), "stacked": float("inf")}
    for _ in range(args.repeats):
        alone = members(data, training.seed)
        started = time.perf_counter()
        alone_histories = [train([member], training)[0] for member in alone]
        seconds["sequential"] = min(seconds["sequential"], time.perf_counter() - started)
        stacked = members(data, training.seed)
        started = time.perf_counter()
        stacked_histories = train(stacked, training)
        seconds["stacked"] = min(seconds["stacked"], time.perf_counter() - started)

    difference = max(
        (a - b).abs().max().item()
        for one, other in zip(alone, stacked, strict=True)
        for a, b in zip(one.network.parameters(), other.network.parameters(), strict=True)
    )
    same_histories = alone_histories == stacked_histories
    rows = [len(x) for x, *_ in data]
    lines = [
        f"folds: {args.folds} (training rows {rows}); epochs: {args.epochs}; batch: 16; "
        f"Adam lr 1e-3; torch {torch.__version__}, 1 thread",
        f"sequential_seconds: {seconds['sequential']:.2f}",
        f"stacked_seconds: {seconds['stacked']:.2f}",
        f"max_weight_difference: {difference:.3g}",
        f"histories_identical: {same_histories}",
        "sequential_val_accuracy: "
        + " ".join(f"{h['val_accuracy'][-1]:.4f}" for h in alone_histories),
        "stacked_val_accuracy:    "
        + " ".join(f"{h['val_accuracy'][-1]:.4f}" for h in stacked_histories),
        f"ratio: {seconds['sequential'] / seconds['stacked']:.2f}",
    ]
    print("\n".join(lines))  # noqa: T201 (a benchmark reports on stdout)


if __name__ == "__main__":
    main()
