"""The backprop report: the lesson network's section, the table's MLP section, and the
whole written as ``backprop_report.json`` with its headline figures as MLflow metrics."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import numpy as np
import torch

from neural_net_lab.engine.config import ModelParams

from .params import BackpropParams, MlpCheck


def _lists(arrays: Mapping[str, np.ndarray]) -> dict[str, Any]:
    return {name: np.asarray(value).tolist() for name, value in arrays.items()}


def network_report(
    backprop: BackpropParams,
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
            "input": backprop.example.input,
            "target": backprop.example.target,
            "layers": {name: layer.model_dump() for name, layer in backprop.network.items()},
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
        "finite_difference_step": backprop.finite_difference.step,
        "sgd": {"lr": backprop.sgd.lr, "zero_grad_before_backward": True},
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
    """The MLP's section of the report: relative error per parameter tensor."""
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
