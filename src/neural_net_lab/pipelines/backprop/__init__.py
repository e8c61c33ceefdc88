"""backprop: hand-derived gradients vs autograd vs finite differences, on the lesson's network
and the table's MLP. Imports the engine and table; its pipeline includes
data_processing's."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
