"""Neural Net Lab"""

__version__ = "0.1"
