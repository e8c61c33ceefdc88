"""The run's parameters, for the code that builds pipelines.

Kedro calls ``register_pipelines()`` and each ``create_pipeline()`` with no arguments, yet two
pipelines take their shape from the parameters: an experiment has one training node per
variant block (``variants.variant_names``), and inference prices with the default or the
tuned network (``pipelines.inference.network_choice``). ``parameters()`` is the one accessor
they read.

During a run Kedro creates the session's context, then builds the pipelines (``session.run``);
the context's config loader (with the session's ``--env``, ``--conf-source`` and
``--params``) reaches the build through ``RunConfigHooks``, whose ``after_context_created`` is
the one public point in between, and ``register_pipelines`` ends the build, so nothing of the
run outlives it. The state is a ``ContextVar``: a session in another thread builds with its
own. Outside a run (``kedro viz``, ``kedro registry``) the project's own files are read.
"""

from __future__ import annotations

import os
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from contextvars import ContextVar
from functools import cache
from pathlib import Path
from typing import Any

from kedro.framework.hooks import hook_impl
from kedro.framework.project import settings
from kedro.utils import find_kedro_project

# The parameters of the run whose pipelines are about to be built, loaded on first use.
_BUILD: ContextVar[Any] = ContextVar("neural_net_lab_pipeline_build", default=None)


class RunConfigHooks:
    """Hands a session's config loader to the build of its pipelines (see the module)."""

    @hook_impl
    def after_context_created(self, context: Any) -> None:
        _BUILD.set(cache(lambda: context.config_loader["parameters"]))


@contextmanager
def pipeline_build() -> Iterator[None]:
    """The build of a run's pipelines: when it ends, later code (another session in the same
    process, a test) no longer sees the run's parameters."""
    try:
        yield
    finally:
        _BUILD.set(None)


def run_parameters() -> Mapping[str, Any] | None:
    """The parameters of the run whose pipelines are being built; None outside a build."""
    build = _BUILD.get()
    return build() if build is not None else None


def parameters(project_path: Path | str | None = None) -> Mapping[str, Any] | None:
    """The parameters pipeline code may read while pipelines are built; None without a project.

    During a run they are the run's (``run_parameters``). Outside a run, or with
    ``project_path``, they are read with the project's config loader: ``conf/base``, then
    ``$KEDRO_ENV`` or ``conf/local``. The project is ``project_path`` or the one around the
    working directory.
    """
    found = run_parameters() if project_path is None else None
    if found is not None:
        return found
    project = project_path or find_kedro_project(Path.cwd())
    if project is None:
        return None
    loader = settings.CONFIG_LOADER_CLASS(
        conf_source=str(Path(project) / settings.CONF_SOURCE),
        env=os.environ.get("KEDRO_ENV"),
        **settings.CONFIG_LOADER_ARGS,
    )
    return loader["parameters"]
