"""data_processing: the table validated, its schema derived, split and standardized. The checks,
schema, split and scaling live in neural_net_lab.table, which every pipeline that reads the
table imports; so does this one."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
