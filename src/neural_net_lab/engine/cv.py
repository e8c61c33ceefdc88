"""k-fold cross-validation of one network configuration, the objective of hyperparameter tuning."""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field

import numpy as np
import torch
from sklearn.preprocessing import StandardScaler

from .config import ModelParams, TrainingParams
from .model import mlp_from_params
from .seeding import seed_everything
from .training import Member, train


@dataclass(frozen=True)
class FoldNetwork:
    """One trained fold network with the scaler of its fold's training rows."""

    fold: int
    seed: int
    mean: np.ndarray
    scale: np.ndarray
    state_dict: dict[str, torch.Tensor]
    val_accuracy: float


@dataclass
class CVResult:
    """Per-fold histories and final scores of one cross-validated configuration.

    ``histories[f]`` holds fold ``f``'s per-epoch ``train_loss``, ``val_loss`` and
    ``val_accuracy``; ``val_accuracy[f]`` and ``val_log_loss[f]`` are their values at the
    last epoch run (not the best epoch: choosing that would choose the epoch count on the
    validation rows). ``stopped`` is True when ``on_epoch`` ended the folds early.
    ``members`` holds the trained networks when they were asked for (``keep_networks``):
    fold by fold, each fold's seeds in order.
    """

    histories: list[dict[str, list[float]]]
    val_accuracy: list[float]
    val_log_loss: list[float]
    epochs_run: int
    stopped: bool
    members: list[FoldNetwork] = field(default_factory=list)

    @property
    def mean_accuracy(self) -> float:
        return float(np.mean(self.val_accuracy))

    @property
    def std_accuracy(self) -> float:
        return float(np.std(self.val_accuracy))

    @property
    def mean_log_loss(self) -> float:
        return float(np.mean(self.val_log_loss))


def cross_validate(
    features: np.ndarray,
    labels: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    model: ModelParams,
    training: TrainingParams,
    *,
    on_epoch: Callable[[int, float], bool] | None = None,
    stacked: bool = True,
    seeds_per_fold: int = 1,
    keep_networks: bool = False,
) -> CVResult:
    """Trains one network per fold on unscaled ``features`` and scores it on the fold's rows.

    Each fold fits its own ``StandardScaler`` on its training rows only, so no fold sees
    statistics of rows it is scored on. Fold ``f`` trains with seed ``training.seed + f``
    exactly as a plain training does (seed, build the MLP, ``train``), so its history equals
    that training's. The folds advance together, epoch by epoch, and after every epoch
    ``on_epoch(epoch, mean_val_accuracy)`` (``epoch`` counted from 0) receives the mean over
    folds of that epoch's validation accuracy; returning True stops every fold there, which
    is how a pruner ends a poor trial early.

    ``seeds_per_fold`` m > 1 trains each fold m times, fold ``f``'s seed ``s`` with
    ``training.seed + f + s * k`` (k folds), so seed 0 is the plain run above and no two
    members share a seed; histories and scores stay those of seed 0, and ``on_epoch`` sees
    the mean over every member. ``keep_networks`` returns every member's weights and fold
    scaler in ``members``: a fold ensemble (``engine.ensemble``).

    ``stacked`` (the default) trains all folds as one stack of networks (``engine.stack``):
    the same numbers per fold, in a fraction of the time (docs/performance.md); False trains
    each fold as a stack of its own. A training loss that turns NaN or infinite raises
    ``FloatingPointError`` naming the fold and epoch.
    """
    if len(folds) < 2:
        raise ValueError(f"cross-validation needs at least 2 folds, got {len(folds)}")
    if seeds_per_fold < 1:
        raise ValueError(f"seeds_per_fold must be at least 1, got {seeds_per_fold}")
    plan = [
        (f, s, training.seed + f + s * len(folds))
        for f in range(len(folds))
        for s in range(seeds_per_fold)
    ]
    tensors = [_fold_tensors(features, labels, fold) for fold in folds]
    members = []
    for f, s, seed in plan:
        generator = seed_everything(seed)  # before building: the weights draw from it
        fit_x, fit_y, val_x, val_y = tensors[f]
        name = f"fold {f}" if s == 0 else f"fold {f} seed {s}"
        network = mlp_from_params(model)
        members.append(Member(network, fit_x, fit_y, generator, (val_x, val_y), name=name))
    histories = train(
        members,
        training,
        stacked=stacked,
        on_epoch=on_epoch,
        description=f"{len(folds)} folds",
    )
    stopped = len(histories[0]["train_loss"]) < training.epochs
    states = (
        [{k: v.detach().clone() for k, v in m.network.state_dict().items()} for m in members]
        if keep_networks
        else None
    )
    return _result(features, folds, plan, histories, states, stopped)


def _result(
    features: np.ndarray,
    folds: Sequence[tuple[np.ndarray, np.ndarray]],
    plan: list[tuple[int, int, int]],
    histories: list[dict[str, list[float]]],
    states: list[dict[str, torch.Tensor]] | None,
    stopped: bool,
) -> CVResult:
    """Scores of each fold's first seed; with ``states``, every member and its fold scaler."""
    first = [h for (_, s, _), h in zip(plan, histories) if s == 0]
    members = []
    if states is not None:
        scalers = [StandardScaler().fit(features[train_idx]) for train_idx, _ in folds]
        members = [
            FoldNetwork(
                fold=f,
                seed=seed,
                mean=scalers[f].mean_,
                scale=scalers[f].scale_,
                state_dict=state,
                val_accuracy=history["val_accuracy"][-1],
            )
            for (f, _, seed), history, state in zip(plan, histories, states, strict=True)
        ]
    return CVResult(
        histories=first,
        val_accuracy=[h["val_accuracy"][-1] for h in first],
        val_log_loss=[h["val_loss"][-1] for h in first],
        epochs_run=len(first[0]["train_loss"]),
        stopped=stopped,
        members=members,
    )


def _fold_tensors(
    features: np.ndarray, labels: np.ndarray, fold: tuple[np.ndarray, np.ndarray]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The fold's training and validation rows, scaled by a scaler fit on its training rows."""
    train_idx, val_idx = fold
    scaler = StandardScaler().fit(features[train_idx])

    def tensors(rows: np.ndarray) -> tuple[torch.Tensor, torch.Tensor]:
        scaled = scaler.transform(features[rows]).astype(np.float32)
        return torch.from_numpy(scaled), torch.from_numpy(np.asarray(labels[rows], dtype=np.int64))

    return *tensors(train_idx), *tensors(val_idx)
