"""How steady is the tuned network on the test split: one refit against fold ensembles.

The tuned configuration (``data/06_models/tuned_parameters.yml`` after
``kedro run --pipelines tuning``, or the file given as ``--parameters``; the default blocks of
conf/base otherwise) is trained with several training seeds. For each seed it is refit once on
the whole training split (one network with the split's scaler) and cross-validated on the
tuning pipeline's folds with ``m`` seeds per fold, all members in one stack
(``engine.cv.cross_validate``); the fold networks, each with its own fold scaler, are averaged
as the tuning pipeline serves them. Every candidate is scored once on the test split.

    python benchmarks/ensemble_seeds.py [--seeds 5] [--members 1,3,5] [--epochs N]
        [--parameters data/06_models/tuned_parameters.yml]

Prints, per candidate, the test accuracy for each seed, its mean, standard deviation and
spread (max - min), and the seconds per training, then ``ratio: N``: the refit's spread over
the spread of the ensemble with the most seeds per fold (above 1: the ensemble is steadier).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import pandas as pd
import torch
import yaml
from sklearn.model_selection import StratifiedKFold
from sklearn.preprocessing import StandardScaler

from neural_net_lab.datasets.tuned_parameters import TunedParametersDataset
from neural_net_lab.engine.config import ColumnsParams, ModelParams, TrainingParams
from neural_net_lab.engine.cv import cross_validate
from neural_net_lab.engine.ensemble import build_ensemble
from neural_net_lab.engine.fit import fit_classifier
from neural_net_lab.table import (
    DataProcessingParams,
    encode_features,
    encode_labels,
    split_data,
    validate_table,
)

ROOT = Path(__file__).resolve().parents[1]
RAW = ROOT / "data/01_raw/phone_prices.csv"
TUNED = ROOT / "data/06_models/tuned_parameters.yml"
TARGET = "price_range"


def blocks(epochs: int | None, parameters: Path) -> tuple[ModelParams, TrainingParams, str]:
    if parameters.exists():
        tuned = TunedParametersDataset(filepath=str(parameters)).load()
        model, training, source = tuned.model, tuned.training, str(parameters)
    else:
        shipped = yaml.safe_load((ROOT / "conf/base/parameters_training.yml").read_text())
        model = ModelParams.model_validate(shipped["model"])
        training, source = TrainingParams.model_validate(shipped["training"]), "default"
    changes = {"progress": False} | ({"epochs": epochs} if epochs else {})
    return model, training.model_copy(update=changes), source


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seeds", type=int, default=5, help="training seeds per candidate")
    parser.add_argument("--members", default="1,3,5", help="seeds per fold, comma separated")
    parser.add_argument("--epochs", type=int, default=None, help="override the epochs")
    parser.add_argument(
        "--parameters", type=Path, default=TUNED, help="a tuned_parameters.yml to measure"
    )
    args = parser.parse_args()
    model, training, source = blocks(args.epochs, args.parameters)

    # The shipped split (data_processing's nodes and settings), encoded as the tuning
    # pipeline encodes it: inputs before scaling and class codes.
    processing = DataProcessingParams.model_validate(
        yaml.safe_load((ROOT / "conf/base/parameters_data_processing.yml").read_text())[
            "data_processing"
        ]
    )
    validated, schema = validate_table(
        pd.read_csv(RAW), ColumnsParams(target=TARGET), processing, model
    )
    model = schema.network(model, source)
    train_split, test_split = split_data(validated, schema, processing)
    x = encode_features(train_split, schema, "training split")
    y = encode_labels(train_split, schema, "training split")
    test_x = encode_features(test_split, schema, "test split")
    test_y = encode_labels(test_split, schema, "test split")
    folds = list(StratifiedKFold(5, shuffle=True, random_state=66).split(x, y))
    scaler = StandardScaler().fit(x)
    scaled = pd.DataFrame(scaler.transform(x).astype(np.float32), columns=schema.inputs)
    scaled[TARGET] = y
    print(f"{source} configuration: {model.dump()} {training.dump()}")

    results: dict[str, list[tuple[float, float]]] = {"refit": []}
    counts = [int(m) for m in args.members.split(",")]
    for seed in range(training.seed, training.seed + args.seeds):
        seeded = training.model_copy(update={"seed": seed})
        started = time.perf_counter()
        network, _, _ = fit_classifier(scaled, scaled.iloc[:0], model, seeded, schema)
        refit = build_ensemble([(scaler.mean_, scaler.scale_, network.state_dict())], model)
        results["refit"].append((_accuracy(refit, test_x, test_y), time.perf_counter() - started))
        for m in counts:
            started = time.perf_counter()
            cv = cross_validate(x, y, folds, model, seeded, seeds_per_fold=m, keep_networks=True)
            ensemble = build_ensemble([(k.mean, k.scale, k.state_dict) for k in cv.members], model)
            accuracy = _accuracy(ensemble, test_x, test_y)
            results.setdefault(f"ensemble m={m}", []).append(
                (accuracy, time.perf_counter() - started)
            )
        print(f"seed {seed}: " + ", ".join(f"{k} {v[-1][0]:.4f}" for k, v in results.items()))

    print("\n| candidate | test accuracy per seed | mean | std | spread | seconds per training |")
    print("|---|---|---|---|---|---|")
    spreads = {}
    for name, rows in results.items():
        scores = [a for a, _ in rows]
        spreads[name] = max(scores) - min(scores)
        print(
            f"| {name} | {' '.join(f'{a:.4f}' for a in scores)} | {np.mean(scores):.4f} | "
            f"{np.std(scores):.4f} | {spreads[name]:.4f} | {np.mean([s for _, s in rows]):.1f} |"
        )
    widest = spreads[f"ensemble m={max(counts)}"]
    print(f"ratio: {spreads['refit'] / widest:.2f}" if widest else "ratio: inf")


@torch.no_grad()
def _accuracy(ensemble, x: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(ensemble.probabilities(x).argmax(axis=1) == y))


if __name__ == "__main__":
    main()
