"""regularization: L1, L2, dropout and augmentation compared on the phone-price MLP."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]
