"""data_processing: the phone table validated, split and standardized. The checks, split and
scaling live in phone_table, which every pipeline that reads phones imports; so does this one."""

from .pipeline import create_pipeline

__all__ = ["create_pipeline"]

__version__ = "0.1"
