"""Nodes of the backprop pipeline: gradients by hand, by autograd and by finite differences.

Two networks get the same three-way check:
- the lesson's network (sigmoid layers, loss ½·Σ(output − target)², one example), every number
  from ``params:backprop``; its backward pass is written out below in NumPy, layer by layer;
- the phone-price MLP of ``params:model`` at a seeded initialization on a few real rows of
  ``train_set``; its backward pass is the engine's ``ManualMLPGradient`` (the lesson's formulas
  layer by layer; training runs them batched in ``engine.stacked``).
Everything runs in float64, so that the three methods can agree to ~1e-10 and any larger
difference is a bug rather than rounding.
"""

from __future__ import annotations

from collections import OrderedDict
from collections.abc import Callable, Iterator, Mapping
from contextlib import contextmanager
from functools import partial
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from neural_net_lab.engine.config import ColumnsParams, ModelParams
from neural_net_lab.engine.manual_grad import ManualMLPGradient
from neural_net_lab.engine.model import mlp_from_params
from neural_net_lab.engine.optim import build_optimizer
from neural_net_lab.engine.seeding import seed_everything
from neural_net_lab.phone_table import check_feature_table

from .params import BackpropParams, FiniteDifference, MlpCheck

Gradients = dict[str, np.ndarray]


# ---- parameters -------------------------------------------------------------------------
def check_network_parameters(backprop: BackpropParams) -> dict[str, Any]:
    """The lesson network's settings in one mapping, layers in order (checked by Kedro)."""
    return {
        "input": backprop.example.input,
        "target": backprop.example.target,
        "layers": {name: layer.model_dump() for name, layer in backprop.network.items()},
        "lr": backprop.sgd.lr,
        "passes": backprop.gradient_accumulation.passes,
        "step": backprop.finite_difference.step,
    }


# ---- the lesson's network ---------------------------------------------------------------
def _sigmoid(z: np.ndarray) -> np.ndarray:
    return 1.0 / (1.0 + np.exp(-z))


def hand_derived_gradients(network: dict[str, Any]) -> dict[str, Any]:
    """Forward pass and every gradient by the chain rule, layer by layer, in float64 NumPy."""
    names = list(network["layers"])
    weights = [np.array(network["layers"][n]["weight"], dtype=np.float64) for n in names]
    biases = [np.array(network["layers"][n]["bias"], dtype=np.float64) for n in names]
    target = np.array(network["target"], dtype=np.float64)

    # activations[l] is a⁽ˡ⁾, with a⁽⁰⁾ the input; weights[l - 1] is W⁽ˡ⁾.
    activations = [np.array(network["input"], dtype=np.float64)]
    pre_activations = []
    for weight, bias in zip(weights, biases):
        pre_activations.append(weight @ activations[-1] + bias)  # z⁽ˡ⁾ = W⁽ˡ⁾ a⁽ˡ⁻¹⁾ + b⁽ˡ⁾
        activations.append(_sigmoid(pre_activations[-1]))  # a⁽ˡ⁾ = σ(z⁽ˡ⁾)
    output = activations[-1]
    loss = 0.5 * np.sum((output - target) ** 2)

    # σ′(z) = σ(z)(1 − σ(z)): the derivative reuses the activation of the forward pass.
    # Output layer L: δ⁽ᴸ⁾ = ∂L/∂a⁽ᴸ⁾ ⊙ σ′(z⁽ᴸ⁾) with ∂L/∂a⁽ᴸ⁾ = a⁽ᴸ⁾ − t.
    delta = (output - target) * output * (1.0 - output)
    gradients: Gradients = {}
    for layer in range(len(weights), 0, -1):
        below = activations[layer - 1]
        gradients[f"{names[layer - 1]}.weight"] = np.outer(delta, below)  # δ⁽ˡ⁾ a⁽ˡ⁻¹⁾ᵀ
        gradients[f"{names[layer - 1]}.bias"] = delta  # ∂z⁽ˡ⁾/∂b⁽ˡ⁾ = 1
        if layer > 1:
            # δ⁽ˡ⁻¹⁾ = (W⁽ˡ⁾ᵀ δ⁽ˡ⁾) ⊙ σ′(z⁽ˡ⁻¹⁾), with W⁽ˡ⁾ as it was in the forward pass:
            # updating a layer before the error has passed through it gives wrong gradients.
            delta = (weights[layer - 1].T @ delta) * below * (1.0 - below)
    return {
        "loss": float(loss),
        "forward": {
            name: {"z": z, "a": a} for name, z, a in zip(names, pre_activations, activations[1:])
        },
        "gradients": {
            f"{name}.{kind}": gradients[f"{name}.{kind}"]  # input side first
            for name in names
            for kind in ("weight", "bias")
        },
    }


def _sigmoid_network(network: dict[str, Any]) -> nn.Sequential:
    modules: OrderedDict[str, nn.Module] = OrderedDict()
    for name, layer in network["layers"].items():
        weight = torch.tensor(layer["weight"], dtype=torch.float64)
        linear = nn.Linear(weight.shape[1], weight.shape[0], dtype=torch.float64)
        with torch.no_grad():
            linear.weight.copy_(weight)
            linear.bias.copy_(torch.tensor(layer["bias"], dtype=torch.float64))
        modules[name] = linear
        modules[f"{name}_sigmoid"] = nn.Sigmoid()
    return nn.Sequential(modules)


def _example(network: dict[str, Any]) -> tuple[torch.Tensor, torch.Tensor]:
    """The example as a batch of one row, the shape every nn.Module expects."""
    return (
        torch.tensor([network["input"]], dtype=torch.float64),
        torch.tensor([network["target"]], dtype=torch.float64),
    )


def _half_squared_error(outputs: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """½·Σ(output − target)² over rows and outputs; leading dimensions are kept."""
    return 0.5 * (outputs - target).square().sum(dim=(-2, -1))


def _gradients(model: nn.Module) -> Gradients:
    return {name: p.grad.detach().numpy().copy() for name, p in model.named_parameters()}


def _values(model: nn.Module) -> Gradients:
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}


def _sgd(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return build_optimizer(model.parameters(), {"name": "SGD", "lr": lr}, where="backprop.sgd")


def autograd_sgd_step(network: dict[str, Any]) -> dict[str, Any]:
    """Gradients by autograd on an ``nn.Module``, then one SGD step taken after ``zero_grad()``."""
    model = _sigmoid_network(network)
    inputs, target = _example(network)
    optimizer = _sgd(model, network["lr"])
    optimizer.zero_grad()
    loss = _half_squared_error(model(inputs), target)
    loss.backward()
    gradients = _gradients(model)
    optimizer.step()
    return {"loss": loss.item(), "gradients": gradients, "updated_parameters": _values(model)}


def demonstrate_gradient_accumulation(
    network: dict[str, Any], single_pass: dict[str, Any]
) -> dict[str, Any]:
    """Backward passes without ``zero_grad()`` in between add up: k× the gradient, another step."""
    model = _sigmoid_network(network)
    inputs, target = _example(network)
    optimizer = _sgd(model, network["lr"])
    optimizer.zero_grad()
    for _ in range(network["passes"]):
        _half_squared_error(model(inputs), target).backward()  # .grad += this pass's gradient
    accumulated = _gradients(model)
    optimizer.step()
    updated = _values(model)
    single, single_updated = single_pass["gradients"], single_pass["updated_parameters"]
    multiple = {k: network["passes"] * g for k, g in single.items()}
    return {
        "passes": network["passes"],
        "gradients": accumulated,
        "exact_multiple_of_single_pass": all(
            np.array_equal(accumulated[k], multiple[k]) for k in single
        ),
        "max_abs_deviation_from_multiple": max(
            float(np.max(np.abs(accumulated[k] - multiple[k]))) for k in single
        ),
        "updated_parameters": updated,
        "max_step_difference": max(
            float(np.max(np.abs(updated[k] - single_updated[k]))) for k in single
        ),
    }


# ---- finite differences -----------------------------------------------------------------
@contextmanager
def _one_cpu_thread() -> Iterator[None]:
    """The batches are a few MiB: a second thread costs more in waking and waiting than it
    saves, and on a busy machine (other processes on the cores) 15× more."""
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(previous)


# Modules that act on each value on its own (dropout too: the checks run in eval mode).
_ELEMENTWISE = (nn.LeakyReLU, nn.ReLU, nn.Sigmoid, nn.Tanh, nn.Dropout, nn.Identity)


def _losses_with_unit_moved(
    model: nn.Sequential,
    index: int,
    output: torch.Tensor,
    *,
    columns: torch.Tensor,
    shift: torch.Tensor,
    loss_of_outputs: Callable[[torch.Tensor], torch.Tensor],
) -> torch.Tensor:
    """Loss of copy k of the network in which unit ``columns[k]`` of Linear layer ``index``
    (whose output is ``output``, rows × units) is moved by ``shift[k]`` (one value per row).

    Up to the next Linear layer only that unit's activation changes, so the next layer's
    output moves by a rank-one term; the copies go through the rest of the network as one batch.
    """
    copies = len(columns)
    after = index + 1
    while after < len(model) and isinstance(model[after], _ELEMENTWISE):
        after += 1
    activation = model[index + 1 : after]
    if after == len(model):  # the last Linear layer: move the columns themselves
        moved = output.expand(copies, *output.shape).clone()
        moved[torch.arange(copies), :, columns] += shift
        return loss_of_outputs(activation(moved))
    following = model[after]
    if not isinstance(following, nn.Linear):
        raise TypeError(f"finite differences need Linear and element-wise layers, got {following}")
    unit = output[:, columns].T  # (copies, rows)
    change = activation(unit + shift) - activation(unit)
    # (copies, rows, out): the unit's change times its column of the next layer's weight
    rank_one = change.unsqueeze(-1) * following.weight.T[columns].unsqueeze(1)
    moved = following(activation(output)) + rank_one
    return loss_of_outputs(model[after + 1 :](moved))


def _moves(
    layer: nn.Linear, inputs: torch.Tensor, step: float
) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """For each entry of the layer's weight and bias: the output unit that moving it by +h
    moves, and by how much on each row (``h·input[:, j]`` for weight entry (i, j), h for a bias)."""
    entries = torch.arange(layer.weight.numel())  # row-major [out, in]: entry = unit · in + input
    moves = {"weight": (entries // layer.in_features, step * inputs.T[entries % layer.in_features])}
    if layer.bias is not None:
        units = torch.arange(layer.out_features)
        moves["bias"] = (units, torch.full((len(units), len(inputs)), step, dtype=inputs.dtype))
    return moves


def _central_differences(
    model: nn.Sequential,
    features: torch.Tensor,
    loss_of_outputs: Callable[[torch.Tensor], torch.Tensor],
    step: float,
) -> tuple[float, Gradients]:
    """(L(θ + h·e) − L(θ − h·e)) / 2h for every entry of every Linear layer's weight and bias.

    Each L(θ ± h·e) is the network's forward pass with one entry moved, computed without
    redoing what the move leaves unchanged: moving an entry of a layer moves only one unit of
    its output (see ``_moves``), so the layers below run once and chunks of perturbed copies
    go through the layers above as one batch. ``loss_of_outputs`` maps outputs
    (copies, rows, classes) to one loss per copy.
    """
    model.eval()  # dropout off: every method must see the same function
    gradients: Gradients = {}
    with torch.no_grad(), _one_cpu_thread():
        loss = float(loss_of_outputs(model(features)))
        widest = max(m.out_features for m in model if isinstance(m, nn.Linear))
        chunk = max(1, 2**22 // (features.shape[0] * widest))  # ≤ 32 MiB of float64 per batch
        below = features
        for index, (name, layer) in enumerate(model.named_children()):
            output = layer(below)
            if isinstance(layer, nn.Linear):
                moved = partial(
                    _losses_with_unit_moved, model, index, output, loss_of_outputs=loss_of_outputs
                )
                for kind, (units, shifts) in _moves(layer, below, step).items():
                    estimates = [
                        (moved(columns=u, shift=s) - moved(columns=u, shift=-s)) / (2 * step)
                        for u, s in zip(units.split(chunk), shifts.split(chunk))
                    ]
                    shape = getattr(layer, kind).shape
                    gradients[f"{name}.{kind}"] = torch.cat(estimates).view(shape).numpy()
            below = output
    return loss, gradients


def finite_difference_gradients(network: dict[str, Any]) -> dict[str, Any]:
    """The lesson network's loss and gradients by central finite differences (no derivatives)."""
    inputs, target = _example(network)
    loss, gradients = _central_differences(
        _sigmoid_network(network),
        inputs,
        partial(_half_squared_error, target=target),
        network["step"],
    )
    return {"loss": loss, "gradients": gradients}


# ---- comparison -------------------------------------------------------------------------
def _relative_error(a: np.ndarray, b: np.ndarray) -> float:
    """‖a − b‖ / max(‖a‖, ‖b‖): one figure per tensor that tiny entries cannot blow up."""
    scale = max(np.linalg.norm(a), np.linalg.norm(b))
    return float(np.linalg.norm(a - b) / scale) if scale > 0 else 0.0


def compare_gradients(
    manual: dict[str, Any], autograd: dict[str, Any], finite_difference: dict[str, Any]
) -> dict[str, Any]:
    """Loss by method, and per pair of methods the largest absolute difference and the
    relative error of each parameter tensor."""
    methods = {"manual": manual, "autograd": autograd, "finite_difference": finite_difference}
    names = list(manual["gradients"])
    for method, result in methods.items():
        if set(result["gradients"]) != set(names):
            raise ValueError(f"{method} gradients are for {list(result['gradients'])}, not {names}")
    comparison: dict[str, Any] = {
        "loss_by_method": {m: r["loss"] for m, r in methods.items()},
        "max_abs_difference": {},
        "relative_error": {},
        "max_relative_error": {},
    }
    for (first, one), (second, other) in combinations(methods.items(), 2):
        pair = f"{first}_vs_{second}"
        a, b = one["gradients"], other["gradients"]
        errors = {name: _relative_error(a[name], b[name]) for name in names}
        comparison["max_abs_difference"][pair] = max(
            float(np.max(np.abs(a[n] - b[n]))) for n in names
        )
        comparison["relative_error"][pair] = errors
        comparison["max_relative_error"][pair] = max(errors.values())
    return comparison


# ---- the phone-price MLP ----------------------------------------------------------------
def select_check_rows(
    train_set: pd.DataFrame, columns: ColumnsParams, model: ModelParams, check: MlpCheck
) -> dict[str, torch.Tensor]:
    """The first ``backprop.mlp_check.rows`` rows of the training set as float64 features and labels."""
    if check.rows > len(train_set):
        raise ValueError(
            f"backprop.mlp_check.rows is {check.rows} but train_set has {len(train_set)} rows"
        )
    head = train_set.head(check.rows)
    features = check_feature_table(head, columns, "train_set")
    if columns.target not in head.columns:
        raise KeyError(f"train_set: label column '{columns.target}' is missing")
    labels = head[columns.target].to_numpy(dtype="int64")
    outside = sorted({int(v) for v in labels if not 0 <= v < model.n_classes})
    if outside:
        raise ValueError(
            f"train_set: labels {outside} are outside 0..{model.n_classes - 1} (model.n_classes)"
        )
    return {
        "features": torch.tensor(features.to_numpy(dtype="float64")),
        "labels": torch.tensor(labels),
    }


def initialize_mlp(model: ModelParams, check: MlpCheck) -> dict[str, torch.Tensor]:
    """The network described by ``model`` at a seeded initialization, in float64."""
    seed_everything(check.seed)
    return mlp_from_params(model).double().state_dict()


def _float64_mlp(weights: dict[str, torch.Tensor], model: ModelParams) -> nn.Sequential:
    network = mlp_from_params(model).double()
    network.load_state_dict(weights)
    return network.eval()  # dropout off: every method must see the same function


def _mean_cross_entropy(outputs: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """Mean cross-entropy over rows of logits (…, rows, classes); leading dimensions are kept."""
    per_row = F.cross_entropy(
        outputs.movedim(-1, 1), labels.expand(outputs.shape[:-1]), reduction="none"
    )
    return per_row.mean(dim=-1)


def mlp_hand_derived_gradients(
    weights: dict[str, torch.Tensor], model: ModelParams, batch: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """Mean cross-entropy and its gradients from the engine's hand-derived backward pass."""
    network = _float64_mlp(weights, model)
    labels = batch["labels"]
    one_hot = F.one_hot(labels, model.n_classes).to(torch.float64)
    # Returns the summed loss but writes gradients of the mean loss.
    loss_sum = ManualMLPGradient(network).loss_and_gradients(
        batch["features"], one_hot, training=False
    )
    return {"loss": loss_sum.item() / len(labels), "gradients": _gradients(network)}


def mlp_autograd_gradients(
    weights: dict[str, torch.Tensor], model: ModelParams, batch: dict[str, torch.Tensor]
) -> dict[str, Any]:
    """Mean cross-entropy and its gradients by autograd."""
    network = _float64_mlp(weights, model)
    loss = _mean_cross_entropy(network(batch["features"]), batch["labels"])
    loss.backward()
    return {"loss": loss.item(), "gradients": _gradients(network)}


def mlp_finite_difference_gradients(
    weights: dict[str, torch.Tensor],
    model: ModelParams,
    batch: dict[str, torch.Tensor],
    finite_difference: FiniteDifference,
) -> dict[str, Any]:
    """Mean cross-entropy and its gradients by central finite differences, every entry."""
    loss, gradients = _central_differences(
        _float64_mlp(weights, model),
        batch["features"],
        partial(_mean_cross_entropy, labels=batch["labels"]),
        finite_difference.step,
    )
    return {"loss": loss, "gradients": gradients}


# ---- report -----------------------------------------------------------------------------
def _lists(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    return {name: np.asarray(value).tolist() for name, value in arrays.items()}


def network_report(
    network: dict[str, Any],
    *,
    manual: dict[str, Any],
    autograd: dict[str, Any],
    finite_difference: dict[str, Any],
    comparison: dict[str, Any],
    accumulation: dict[str, Any],
) -> dict[str, Any]:
    """The lesson network's section of the report, JSON-ready."""
    return {
        "network": {
            "activation": "sigmoid",
            "loss": "0.5 * sum((output - target)^2)",
            "input": network["input"],
            "target": network["target"],
            "layers": network["layers"],
        },
        "forward": {name: _lists(values) for name, values in manual["forward"].items()},
        "loss": manual["loss"],
        "loss_by_method": comparison["loss_by_method"],
        "gradients": {
            "manual": _lists(manual["gradients"]),
            "autograd": _lists(autograd["gradients"]),
            "finite_difference": _lists(finite_difference["gradients"]),
        },
        "max_abs_difference": comparison["max_abs_difference"],
        "relative_error": comparison["relative_error"],
        "finite_difference_step": network["step"],
        "sgd": {"lr": network["lr"], "zero_grad_before_backward": True},
        "updated_parameters": _lists(autograd["updated_parameters"]),
        "gradient_accumulation": {
            **{
                k: v
                for k, v in accumulation.items()
                if k not in ("gradients", "updated_parameters")
            },
            "gradients": _lists(accumulation["gradients"]),
            "updated_parameters": _lists(accumulation["updated_parameters"]),
        },
    }


def mlp_report(
    model: ModelParams,
    batch: dict[str, torch.Tensor],
    check: MlpCheck,
    manual: dict[str, Any],
    comparison: dict[str, Any],
) -> dict[str, Any]:
    """The phone-price MLP's section of the report: relative error per parameter tensor."""
    return {
        "model": model.dump(),
        "rows": int(batch["labels"].shape[0]),
        "seed": check.seed,
        "parameters": {name: list(g.shape) for name, g in manual["gradients"].items()},
        "gradient_norm": {
            name: float(np.linalg.norm(g)) for name, g in manual["gradients"].items()
        },
        "loss": manual["loss"],
        **comparison,
    }


def write_report(
    network: dict[str, Any], mlp: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, dict[str, float]]]:
    """The full report, and its headline figures as MLflow metrics."""
    metrics = {
        "loss": network["loss"],
        "gradient_accumulation.max_step_difference": network["gradient_accumulation"][
            "max_step_difference"
        ],
        **{f"max_abs_difference.{pair}": v for pair, v in network["max_abs_difference"].items()},
        "mlp.loss": mlp["loss"],
        **{f"mlp.max_abs_difference.{pair}": v for pair, v in mlp["max_abs_difference"].items()},
        **{f"mlp.max_relative_error.{pair}": v for pair, v in mlp["max_relative_error"].items()},
    }
    return {**network, "phone_price_mlp": mlp}, {
        k: {"value": float(v), "step": 0} for k, v in metrics.items()
    }
