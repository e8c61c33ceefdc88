"""regularization: L1, L2, dropout and augmentation compared on the phone-price MLP. Imports the
engine, variants and reporting; its pipeline includes data_processing's and training's."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
