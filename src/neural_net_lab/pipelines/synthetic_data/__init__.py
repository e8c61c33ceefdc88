"""synthetic_data: a phone table of any size from the shipped data's generator. Imports
data_generation and the engine's parameter blocks."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
