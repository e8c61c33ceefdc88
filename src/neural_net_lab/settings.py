"""Project settings.

See https://docs.kedro.org/en/stable/configure/configuration_basics/ for the defaults.
"""

import atexit
import gc
import os
import warnings
from pathlib import Path

from kedro.utils import find_kedro_project
from omegaconf.resolvers import oc

from neural_net_lab.config_loader import RuntimeParamsLastConfigLoader
from neural_net_lab.context import ProjectContext
from neural_net_lab.datasets.atomic import AtomicSavesCatalog
from neural_net_lab.hooks import InputFileHooks, RunStateHooks
from neural_net_lab.mlflow_params import TableSchemaForMlflow, TypedParamsForMlflow
from neural_net_lab.run_config import RunConfigHooks
from neural_net_lab.tracking_store import TrackingStoreHooks

HOOKS = (
    TrackingStoreHooks(),
    InputFileHooks(),
    TypedParamsForMlflow(),
    TableSchemaForMlflow(),
    RunConfigHooks(),
    RunStateHooks(),
)


def _quiet_third_party_output() -> None:
    """Silences what other packages print on every run and the user cannot act on.

    Kedro imports this module before its plugins import MLflow, so it is the one place that
    runs early enough. Only these known messages are filtered: the project's own warnings,
    and any new ones from these packages, still show. Each variable is a default that the
    user's environment can override.
    """
    # Kedro 1.7 and kedro-mlflow call OmegaConf's register_new_resolver, deprecated by
    # OmegaConf; the warning repeats for every config loader and names no project file.
    warnings.filterwarnings("ignore", r"register_new_resolver\(\) is deprecated", UserWarning)
    # kedro-mlflow's KedroPipelineModel (imported with the plugin, unused here) has an
    # untyped predict; the project's served model is logged with an explicit signature.
    # MLflow warns inside its own catch_warnings with simplefilter("once"), which overrides
    # any filter, so this one message is dropped where warnings are shown.
    show = warnings.showwarning

    def showwarning(message, category, *args, **kwargs):  # noqa: ANN001, ANN002, ANN003
        if "Add type hints to the `predict` method" not in str(message):
            show(message, category, *args, **kwargs)

    warnings.showwarning = showwarning
    # Progress bars for the served model's few local files, drawn in the middle of the log.
    os.environ.setdefault("MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR", "false")
    # MLflow installs its own log handler and levels on import; conf/logging.yml decides.
    os.environ.setdefault("MLFLOW_CONFIGURE_LOGGING", "false")


_quiet_third_party_output()

# At exit, after the atexit handlers (MLflow ends its run, logging flushes; registered later,
# so they run first), CPython's last garbage collections walk every object of torch, MLflow,
# SQLAlchemy and Matplotlib: about 1 s of a 12 s `kedro run`. Frozen objects are skipped.
# Nothing is lost that Python promises: __del__ of objects still alive at exit may not run.
atexit.register(gc.freeze)

# In a source checkout the package lives in <root>/src/neural_net_lab: the MLflow store is
# then the same file whatever directory Kedro is started from (a notebook, a test's temporary
# directory). An installed package (kedro package) has no project around it: its store goes
# with the data it reads, in the Kedro project around the working directory or the working
# directory itself, as Kedro chooses the project path of a packaged run.
_PACKAGE_DIR = Path(__file__).resolve().parent
PROJECT_ROOT = (
    _PACKAGE_DIR.parents[1]
    if _PACKAGE_DIR.parent.name == "src" and (_PACKAGE_DIR.parents[1] / "pyproject.toml").is_file()
    else None
)


def _project_root() -> str:
    root = PROJECT_ROOT or find_kedro_project(Path.cwd()) or Path.cwd()
    return root.as_posix()


# Every catalog entry that writes a local file replaces it atomically, and an input file that
# does not load names the pipeline that rewrites it (docs/concurrency.md).
DATA_CATALOG_CLASS = AtomicSavesCatalog
# ... the context's own catalog too (notebooks, `kedro ipython`, `kedro catalog`).
CONTEXT_CLASS = ProjectContext

# `--params block.key=value` changes that key only, whatever conf/local holds (config_loader.py
# says why not Kedro's soft merge).
CONFIG_LOADER_CLASS = RuntimeParamsLastConfigLoader
CONFIG_LOADER_ARGS = {
    "base_env": "base",
    "default_run_env": "local",
    "custom_resolvers": {
        "project_root": _project_root,
        # Kedro only enables oc.env in credentials; mlflow.yml needs it so that the standard
        # MLFLOW_TRACKING_URI variable can point a run at another store without editing files.
        "oc.env": oc.env,
    },
}
