"""optimizers: the MLP trained once per optimizer, the weighted average and optimizer paths.
Imports the engine, table, variants and reporting; its pipeline includes data_processing's
and training's."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
