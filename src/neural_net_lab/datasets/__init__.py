"""Project datasets: thin variants of kedro-datasets / kedro-mlflow ones, a run's MLflow
description (``mlflow_note``), the tuned configuration validated on load
(``tuned_parameters``), and the atomic-save wrapper with the catalog class that applies it
(``atomic``). They import the engine and writers, no pipeline.

settings.py imports ``atomic`` before MLflow's warnings are filtered, so this package imports
the MLflow-based datasets only when they are first asked for (``__getattr__``).
"""

from __future__ import annotations

from typing import Any

from .atomic import AtomicDataset, AtomicSavesCatalog, DamagedFileError, DamagedInputError

__all__ = [
    "AtomicDataset",
    "AtomicSavesCatalog",
    "DamagedFileError",
    "DamagedInputError",
    "MetricsHistoryDataset",
]


def __getattr__(name: str) -> Any:
    if name == "MetricsHistoryDataset":
        from .mlflow_metrics import MetricsHistoryDataset  # noqa: PLC0415 - imports MLflow

        return MetricsHistoryDataset
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
