"""training: the validation carve, the MLP trained, its curves and the served model logged.
Imports the engine and serving."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
