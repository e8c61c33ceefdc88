"""Project datasets: thin variants of kedro-datasets / kedro-mlflow ones."""

from .mlflow_metrics import MetricsHistoryDataset

__all__ = ["MetricsHistoryDataset"]
