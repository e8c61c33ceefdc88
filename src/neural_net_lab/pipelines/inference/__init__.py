"""inference: classify new rows from a CSV with the persisted schema, scaler and trained
network (or the tuned one, ``network_choice``). Imports the engine, table, serving and
pipeline_registry."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
