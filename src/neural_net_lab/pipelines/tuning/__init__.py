"""tuning: cross-validated hyperparameter search with Optuna, trials on Dask (docs/tuning.md)."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
