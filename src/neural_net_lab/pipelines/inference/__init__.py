"""inference: price new phones from a CSV with the persisted scaler and trained network."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
