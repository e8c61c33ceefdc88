"""tuning: cross-validated hyperparameter search with Optuna, trials on Dask (docs/tuning.md).
Imports the engine, serving, datasets and linear_baseline; its pipeline includes
data_processing's. Nothing outside this folder imports it."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
