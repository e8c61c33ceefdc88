"""The one epoch loop, for one network or k: history, progress bar, NaN check, pruning.

Whatever computes the epochs (a stack of networks with hand-derived gradients, or networks
trained through autograd one by one), this loop records each network's history, stops
with an error naming the network when its training loss stops being finite, shows one
progress bar, and after every epoch asks ``on_epoch(epoch, mean_val_accuracy)`` whether
to stop (a pruner ending a poor trial early).
"""

from __future__ import annotations

import logging
import math
import time
from collections.abc import Callable, Sequence
from typing import Protocol

import numpy as np
from tqdm.auto import tqdm

from .threads import cpu_threads

logger = logging.getLogger(__name__)


class Epochs(Protocol):
    """Networks that train one epoch per ``epoch()`` call, returning one record each
    (``train_loss``, with validation rows ``val_loss`` and ``val_accuracy``); ``finish``
    leaves the trained weights in the networks."""

    def epoch(self) -> list[dict[str, float]]: ...

    def finish(self) -> None: ...


def run_epochs(
    trainings: Sequence[Epochs],
    names: Sequence[str],
    *,
    epochs: int,
    threads: int | None,
    progress: bool,
    description: str,
    on_epoch: Callable[[int, float], bool] | None = None,
) -> list[dict[str, list[float]]]:
    """Runs ``epochs`` epochs of every training in lockstep, at most ``threads`` CPU threads
    (None: as set; restored afterwards); returns each network's per-epoch history.

    ``on_epoch`` gets the epoch (from 0) and the mean validation accuracy of the networks
    with validation rows (NaN without any); True stops every network after that epoch. A
    training loss that turns NaN or infinite raises ``FloatingPointError`` naming the network.
    """
    histories: list[dict[str, list[float]]] = [{} for _ in names]
    started = time.perf_counter()
    mean_loss = mean_accuracy = math.nan
    try:
        with cpu_threads(threads):
            bar = tqdm(
                range(epochs), desc=description, unit="epoch", disable=not progress, leave=False
            )
            for epoch in bar:
                records = [record for training in trainings for record in training.epoch()]
                for name, history, record in zip(names, histories, records, strict=True):
                    if not math.isfinite(record["train_loss"]):
                        raise FloatingPointError(
                            f"{name}: the training loss is {record['train_loss']} at epoch {epoch}"
                        )
                    for key, value in record.items():
                        history.setdefault(key, []).append(value)
                mean_loss = float(np.mean([r["train_loss"] for r in records]))
                scored = [r["val_accuracy"] for r in records if "val_accuracy" in r]
                mean_accuracy = float(np.mean(scored)) if scored else math.nan
                postfix = {"loss": f"{mean_loss:.4f}"}
                if scored:
                    postfix["val_acc"] = f"{mean_accuracy:.3f}"
                bar.set_postfix(postfix)
                if on_epoch is not None and on_epoch(epoch, mean_accuracy):
                    break
    finally:
        for training in trainings:
            training.finish()
    logger.info(
        "%s: %d epochs in %.1f s, train loss %.4f%s",
        description,
        len(histories[0].get("train_loss", [])),
        time.perf_counter() - started,
        mean_loss,
        "" if math.isnan(mean_accuracy) else f", validation accuracy {mean_accuracy:.3f}",
    )
    return histories
