"""evaluation: the trained network's test scores, report, confusion matrix and curves, beside
the linear baseline; its permutation feature importance and calibration on the raw test split.
Imports the engine, linear_baseline, serving, table and model_pictures."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
