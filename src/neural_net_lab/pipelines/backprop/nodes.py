"""Nodes of the backprop pipeline: gradients by hand, by autograd and by finite differences.

Two networks get the same three-way check:
- the lesson's network (sigmoid layers, loss ½·Σ(output − target)², one example), every number
  from ``params:backprop``; its backward pass is written out in ``lesson_network``;
- the MLP of ``params:model`` (its widths those of the user's table) at a seeded
  initialization on a few real rows of ``train_set``; its backward pass is the engine's ``ManualMLPGradient`` (the lesson's formulas
  layer by layer; training runs them batched in ``engine.stack``).
Everything runs in float64, so that the three methods can agree to ~1e-10 and any larger
difference is a bug rather than rounding. The finite differences are in
``finite_differences``, the report's sections in ``report``.
"""

from __future__ import annotations

from functools import partial
from itertools import combinations
from typing import Any

import numpy as np
import pandas as pd
import torch
from torch import nn
from torch.nn import functional as F

from neural_net_lab.engine.config import ModelParams, OptimizerParams
from neural_net_lab.engine.data import to_tensors
from neural_net_lab.engine.manual_grad import ManualMLPGradient
from neural_net_lab.engine.model import mlp_from_params
from neural_net_lab.engine.optim import build_optimizer
from neural_net_lab.engine.seeding import seed_everything
from neural_net_lab.table import TableSchema

from . import lesson_network as lesson
from .finite_differences import Gradients, central_differences
from .params import BackpropParams, FiniteDifference, MlpCheck


def _gradients(model: nn.Module) -> Gradients:
    return {name: p.grad.detach().numpy().copy() for name, p in model.named_parameters()}


def _values(model: nn.Module) -> Gradients:
    return {name: p.detach().numpy().copy() for name, p in model.named_parameters()}


def _sgd(model: nn.Module, lr: float) -> torch.optim.Optimizer:
    return build_optimizer(model.parameters(), OptimizerParams(name="SGD", lr=lr))


# ---- the lesson's network ---------------------------------------------------------------
def hand_derived_gradients(backprop: BackpropParams) -> dict[str, Any]:
    """Forward pass and every gradient by the chain rule, layer by layer, in float64 NumPy."""
    return lesson.chain_rule(backprop)


def autograd_sgd_step(backprop: BackpropParams) -> dict[str, Any]:
    """Gradients by autograd on an ``nn.Module``, then one SGD step taken after ``zero_grad()``."""
    model = lesson.sigmoid_network(backprop)
    inputs, target = lesson.example(backprop)
    optimizer = _sgd(model, backprop.sgd.lr)
    optimizer.zero_grad()
    loss = lesson.half_squared_error(model(inputs), target)
    loss.backward()
    gradients = _gradients(model)
    optimizer.step()
    return {"loss": loss.item(), "gradients": gradients, "updated_parameters": _values(model)}


def demonstrate_gradient_accumulation(
    backprop: BackpropParams, single_pass: dict[str, Any]
) -> dict[str, Any]:
    """Backward passes without ``zero_grad()`` in between add up: k× the gradient, another step."""
    passes = backprop.gradient_accumulation.passes
    model = lesson.sigmoid_network(backprop)
    inputs, target = lesson.example(backprop)
    optimizer = _sgd(model, backprop.sgd.lr)
    optimizer.zero_grad()
    for _ in range(passes):
        lesson.half_squared_error(model(inputs), target).backward()  # .grad += this pass's gradient
    accumulated = _gradients(model)
    optimizer.step()
    updated = _values(model)
    single, single_updated = single_pass["gradients"], single_pass["updated_parameters"]
    multiple = {k: passes * g for k, g in single.items()}
    return {
        "passes": passes,
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


def finite_difference_gradients(backprop: BackpropParams) -> dict[str, Any]:
    """The lesson network's loss and gradients by central finite differences (no derivatives)."""
    inputs, target = lesson.example(backprop)
    loss, gradients = central_differences(
        lesson.sigmoid_network(backprop),
        inputs,
        partial(lesson.half_squared_error, target=target),
        backprop.finite_difference.step,
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


# ---- the table's MLP --------------------------------------------------------------------
def select_check_rows(
    train_set: pd.DataFrame, schema: TableSchema, check: MlpCheck
) -> dict[str, torch.Tensor]:
    """The first ``backprop.mlp_check.rows`` rows of the training set (the model input: scaled
    inputs and class codes) as float64 features and int64 labels."""
    if check.rows > len(train_set):
        raise ValueError(
            f"backprop.mlp_check.rows is {check.rows} but train_set has {len(train_set)} rows"
        )
    features, labels = to_tensors(train_set.head(check.rows), schema.inputs, schema.target)
    return {"features": features.double(), "labels": labels}


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
    loss, gradients = central_differences(
        _float64_mlp(weights, model),
        batch["features"],
        partial(_mean_cross_entropy, labels=batch["labels"]),
        finite_difference.step,
    )
    return {"loss": loss, "gradients": gradients}
