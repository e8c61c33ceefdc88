"""Project pipelines: one a folder, found by ``find_pipelines``; ``__default__`` is the main job.
Pipelines that take their shape from the run's parameters read them through
``run_config.parameters``."""

from __future__ import annotations

from kedro.framework.project import find_pipelines
from kedro.pipeline import Pipeline

from neural_net_lab.run_config import pipeline_build

DEFAULT_PIPELINES = ("data_processing", "training", "evaluation")


def register_pipelines() -> dict[str, Pipeline]:
    """Registers every pipeline folder under its name; ``__default__`` is the main job.

    ``kedro run --pipelines X`` makes ``find_pipelines`` return only X (Kedro 1.7), so the
    default is composed only when all of its parts were found.
    """
    with pipeline_build():
        pipelines = find_pipelines(raise_errors=True)
    if all(name in pipelines for name in DEFAULT_PIPELINES):
        pipelines["__default__"] = sum(
            (pipelines[name] for name in DEFAULT_PIPELINES), Pipeline([])
        )
    return pipelines
