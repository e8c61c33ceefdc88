"""transfer: the trained network reused on a small new market (freeze, fine-tune, from scratch,
a linear baseline). Imports the engine, table, linear_baseline and reporting."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
