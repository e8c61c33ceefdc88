"""PyTorch's CPU thread count, capped while a training runs."""

from __future__ import annotations

from contextlib import contextmanager

import torch


@contextmanager
def cpu_threads(threads: int | None):
    """Caps PyTorch's CPU threads at ``threads`` (None: leaves them) and restores them after.

    At batch 16 the phone MLP's matrices are so small that waking a second thread costs more
    than it saves, so trainings run on one thread unless told otherwise.
    """
    previous = torch.get_num_threads()
    if threads:
        torch.set_num_threads(threads)
    try:
        yield
    finally:
        torch.set_num_threads(previous)
