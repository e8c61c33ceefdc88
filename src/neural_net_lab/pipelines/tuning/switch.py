"""The one parameter that makes `inference` price phones with the tuned network.

Pipelines are built before any node runs, so the choice is read from the running session's
parameters (``--params`` included) or, outside a run (``kedro viz``), the project's files.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from kedro.framework.project import settings
from kedro.utils import find_kedro_project

from neural_net_lab.pipeline_registry import run_parameters

NETWORKS = ("default", "tuned")


def inference_network() -> str:
    """``inference.network``: ``default`` (the training pipeline's network) or ``tuned``."""
    block = _parameters().get("inference") or {}
    choice = block.get("network", "default") if hasattr(block, "get") else "default"
    if choice not in NETWORKS:
        raise ValueError(f"inference.network must be one of {list(NETWORKS)}, got {choice!r}")
    return choice


def _parameters() -> Any:
    parameters = run_parameters()
    if parameters is not None:
        return parameters
    project = find_kedro_project(Path.cwd())
    if project is None:
        return {}
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(Path(project) / settings.CONF_SOURCE),
        env=os.environ.get("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]
