"""Measures what each of the lesson's mistakes costs, one comparison each, same seeds.

    python benchmarks/lesson_fixes.py [--epochs 100]

1. Softmax before CrossEntropyLoss vs logits: test accuracy and final training loss.
2. Scaler fitted on all rows before the split vs on the training split only: how far the
   statistics move, and the test accuracy of a logistic regression either way.
3. A loss tensor summed across the epoch with its graph vs detached: how many autograd nodes
   the running total keeps alive at the end of one epoch.
4. torch.load of a pickle: with weights_only=True a file that would run code is refused.
The figures are quoted in docs/lesson_fixes.md. The last line sums them up:

    summary: softmax_accuracy_cost=... leaked_scaler_shift=... graph_nodes_kept=...
             graph_nodes_detached=... pickle_refused=...
"""

from __future__ import annotations

import argparse
import copy
import io
import pickle
from pathlib import Path

import pandas as pd
import torch
from sklearn.linear_model import LogisticRegression
from sklearn.model_selection import train_test_split
from sklearn.preprocessing import StandardScaler
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neural_net_lab.data_generation import FEATURE_COLUMNS, TARGET_COLUMN
from neural_net_lab.engine import accuracy, build_mlp, predict_logits, seed_everything

ROOT = Path(__file__).resolve().parents[1]


def load_split(scale_before_split: bool):
    """The lesson's 80/20 stratified split (random state 66), scaled one way or the other."""
    table = pd.read_csv(ROOT / "data/01_raw/phone_prices.csv")
    x, y = table[FEATURE_COLUMNS].to_numpy(float), table[TARGET_COLUMN].to_numpy()
    if scale_before_split:
        x = StandardScaler().fit_transform(x)
    x_train, x_test, y_train, y_test = train_test_split(
        x, y, train_size=0.8, stratify=y, random_state=66
    )
    if not scale_before_split:
        scaler = StandardScaler().fit(x_train)
        x_train, x_test = scaler.transform(x_train), scaler.transform(x_test)
    return [torch.tensor(a, dtype=torch.float32) for a in (x_train, x_test)] + [
        torch.tensor(y_train),
        torch.tensor(y_test),
    ]


def graph_size(tensor: torch.Tensor) -> int:
    """Autograd nodes reachable from ``tensor``: what holding it keeps alive."""
    seen, stack = set(), [tensor.grad_fn] if torch.is_tensor(tensor) and tensor.grad_fn else []
    while stack:
        node = stack.pop()
        if node is None or id(node) in seen:
            continue
        seen.add(id(node))
        stack.extend(next_node for next_node, _ in node.next_functions)
    return len(seen)


def lesson_training(
    model: nn.Module, x: torch.Tensor, y: torch.Tensor, epochs: int, keep_graph: bool = False
) -> tuple[float, int]:
    """The lesson's loop; returns the last epoch's mean loss and the autograd nodes it holds."""
    torch.manual_seed(0)
    loader = DataLoader(TensorDataset(x, y), batch_size=16, shuffle=True)
    optimizer = torch.optim.Adam(model.parameters(), lr=1e-3)
    loss_fn = nn.CrossEntropyLoss()
    total: float | torch.Tensor = 0.0
    for _ in range(epochs):
        total = 0.0
        for batch, target in loader:
            optimizer.zero_grad()
            loss = loss_fn(model(batch), target)
            loss.backward()
            optimizer.step()
            total = total + loss if keep_graph else total + loss.item()
    held = graph_size(total)
    mean = (total.item() if torch.is_tensor(total) else total) / len(loader)
    return mean, held


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--epochs", type=int, default=100)
    epochs = parser.parse_args().epochs
    torch.set_num_threads(1)

    x_train, x_test, y_train, y_test = load_split(scale_before_split=False)
    seed_everything(42)
    initial = build_mlp(20, [128, 256], 4)
    print(
        f"1. Softmax before CrossEntropyLoss ({epochs} epochs, Adam 1e-3, batch 16, same initial weights)"
    )
    variants = {
        "logits (this project)": copy.deepcopy(initial),
        "softmax (the lesson)": nn.Sequential(copy.deepcopy(initial), nn.Softmax(dim=1)),
    }
    test_accuracies = []
    for name, model in variants.items():
        loss, _ = lesson_training(model, x_train, y_train, epochs)
        test_accuracies.append(accuracy(predict_logits(model, x_test), y_test))
        print(f"   {name:24s} final train loss {loss:.4f}  test accuracy {test_accuracies[-1]:.4f}")

    print("2. Scaler fitted before the split (the lesson) vs on the training split only")
    leaky = load_split(scale_before_split=True)
    clean = load_split(scale_before_split=False)
    shift = (leaky[1] - clean[1]).abs().mean().item()
    print(f"   mean |difference| of standardized test features: {shift:.4f}")
    for name, (xtr, xte, ytr, yte) in {
        "fitted on all rows": leaky,
        "fitted on train only": clean,
    }.items():
        score = (
            LogisticRegression(max_iter=2000)
            .fit(xtr.numpy(), ytr.numpy())
            .score(xte.numpy(), yte.numpy())
        )
        print(f"   logistic regression test accuracy, scaler {name:22s} {score:.4f}")

    print("3. Loss summed across an epoch with its graph (the lesson) vs detached")
    held = {}
    for keep in (False, True):
        _, held[keep] = lesson_training(copy.deepcopy(initial), x_train, y_train, 1, keep)
        label = "total += loss (graph kept)" if keep else "total += loss.item()"
        print(f"   {label:28s} autograd nodes held after one epoch: {held[keep]}")

    print("4. torch.load of a pickle")

    class Payload:
        def __reduce__(self):
            return (print, ("   !!! code ran while loading the file",))

    buffer = io.BytesIO()
    torch.save({"weights": torch.zeros(2), "payload": Payload()}, buffer)
    buffer.seek(0)
    refused = False
    try:
        torch.load(buffer, weights_only=True)
        print("   weights_only=True loaded it (unexpected)")
    except pickle.UnpicklingError as error:
        refused = True
        print(f"   weights_only=True refused it: {str(error).splitlines()[0][:90]}")
    buffer.seek(0)
    torch.load(buffer, weights_only=False)
    print("   weights_only=False ran the payload's code (line above)")
    print(
        f"summary: softmax_accuracy_cost={test_accuracies[0] - test_accuracies[1]:.4f} "
        f"leaked_scaler_shift={shift:.4f} graph_nodes_kept={held[True]} graph_nodes_detached={held[False]} pickle_refused={refused}"
    )


if __name__ == "__main__":
    main()
