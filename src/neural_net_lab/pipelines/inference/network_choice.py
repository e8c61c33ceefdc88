"""The one parameter that makes `inference` price phones with the tuned network.

Pipelines are built before any node runs, so the choice is read from the running session's
parameters (``--params`` included) or, outside a run (``kedro viz``), the project's files.
"""

from __future__ import annotations

from neural_net_lab.run_config import parameters

NETWORKS = ("default", "tuned")


def inference_network() -> str:
    """``inference.network``: ``default`` (the training pipeline's network) or ``tuned``."""
    block = (parameters() or {}).get("inference") or {}
    choice = block.get("network", "default") if hasattr(block, "get") else "default"
    if choice not in NETWORKS:
        raise ValueError(f"inference.network must be one of {list(NETWORKS)}, got {choice!r}")
    return choice
