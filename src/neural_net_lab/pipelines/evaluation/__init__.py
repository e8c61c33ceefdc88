"""evaluation: the trained network's test scores, report, confusion matrix and curves, beside
the linear baseline. Imports the engine and linear_baseline."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
