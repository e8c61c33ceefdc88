"""Two-variable test functions and optimizer paths over them.

The paths from ``torch.optim`` go through the project's ``build_optimizer``; the lesson's
formulas (momentum as an average of gradients, Adam without bias correction) are written out
by hand next to them so that each pair can be run from the same start for the same steps.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import torch

from neural_net_lab.engine.config import OptimizerParams
from neural_net_lab.engine.optim import build_optimizer

from .params import FunctionParams, TrajectoriesParams

Surface = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
Paths = dict[str, dict[str, np.ndarray]]  # function or pair → label → (steps + 1, 2) points


def _elongated_quadratic(a: float = 0.1, b: float = 2.0) -> Surface:
    # Curvatures 2a and 2b: with the defaults one direction is 20× steeper than the other.
    return lambda x, y: a * x**2 + b * y**2


def _rosenbrock(a: float = 1.0, b: float = 100.0) -> Surface:
    # A curved, nearly flat valley with its minimum at (a, a²).
    return lambda x, y: (a - x) ** 2 + b * (y - x**2) ** 2


SURFACES: dict[str, Callable[..., Surface]] = {
    "elongated_quadratic": _elongated_quadratic,
    "rosenbrock": _rosenbrock,
}


def surface_named(trajectories: TrajectoriesParams, name: str) -> Surface:
    """The function of ``optimizers_trajectories.<name>``; ``a`` and ``b`` default to the kind's."""
    if name not in trajectories.root:
        raise ValueError(
            f"optimizers_trajectories.{name}: no such function; defined: {sorted(trajectories.root)}"
        )
    function = trajectories.root[name].function
    settings = {k: v for k, v in function.model_dump(exclude={"kind"}).items() if v is not None}
    return SURFACES[function.kind](**settings)


def minimum_of(function: FunctionParams) -> list[float]:
    """Where the function is smallest: (a, a²) for Rosenbrock, the origin for the quadratic."""
    a = 1.0 if function.a is None else function.a
    return [a, a * a] if function.kind == "rosenbrock" else [0.0, 0.0]


def value_at(surface: Surface, point: np.ndarray) -> float:
    return float(surface(torch.tensor(point[0]), torch.tensor(point[1])))


def _gradient(surface: Surface, point: torch.Tensor) -> torch.Tensor:
    point = point.detach().requires_grad_(True)
    (grad,) = torch.autograd.grad(surface(point[0], point[1]), point)
    return grad


def torch_path(
    surface: Surface,
    start: list[float],
    optimizer: OptimizerParams,
    steps: int,
    *,
    schedule: Callable[[int], float] | None = None,
) -> np.ndarray:
    """Points visited by a ``torch.optim`` optimizer: ``steps + 1`` rows of (x, y).

    ``schedule(step)`` multiplies the learning rate of step ``step`` (0-based), as
    ``LambdaLR`` does.
    """
    # float64 so that a lesson-vs-PyTorch difference is the formulas', not rounding.
    point = torch.tensor(start, dtype=torch.float64, requires_grad=True)
    engine = build_optimizer([point], optimizer)
    scheduler = torch.optim.lr_scheduler.LambdaLR(engine, schedule) if schedule else None
    path = [point.detach().clone()]
    for _ in range(steps):
        engine.zero_grad()
        surface(point[0], point[1]).backward()
        engine.step()
        if scheduler is not None:
            scheduler.step()
        path.append(point.detach().clone())
    return torch.stack(path).numpy()


def lesson_momentum_path(
    surface: Surface, start: list[float], lr: float, beta: float, steps: int
) -> np.ndarray:
    """The lesson's momentum: v = βv + (1−β)∇L from v = 0, then θ ← θ − lr·v."""
    point = torch.tensor(start, dtype=torch.float64)
    velocity = torch.zeros_like(point)
    path = [point.clone()]
    for _ in range(steps):
        velocity = beta * velocity + (1 - beta) * _gradient(surface, point)
        point = point - lr * velocity
        path.append(point.clone())
    return torch.stack(path).numpy()


def lesson_adam_path(
    surface: Surface,
    start: list[float],
    lr: float,
    betas: tuple[float, float],
    *,
    eps: float,
    steps: int,
) -> np.ndarray:
    """The lesson's Adam: m and v as averages from zero, θ ← θ − lr·m/(√v + ε), no bias correction."""
    beta1, beta2 = betas
    point = torch.tensor(start, dtype=torch.float64)
    m = torch.zeros_like(point)
    v = torch.zeros_like(point)
    path = [point.clone()]
    for _ in range(steps):
        grad = _gradient(surface, point)
        m = beta1 * m + (1 - beta1) * grad
        v = beta2 * v + (1 - beta2) * grad**2
        point = point - lr * m / (v.sqrt() + eps)
        path.append(point.clone())
    return torch.stack(path).numpy()


def uncorrected_adam_factor(betas: tuple[float, float]) -> Callable[[int], float]:
    """LambdaLR factor that turns PyTorch's Adam into the lesson's: (1−β₁ᵗ)/√(1−β₂ᵗ) at step t.

    Equal up to ε, which PyTorch then adds to √v̂ rather than to √v.
    """
    beta1, beta2 = betas
    return lambda step: (1 - beta1 ** (step + 1)) / (1 - beta2 ** (step + 1)) ** 0.5
