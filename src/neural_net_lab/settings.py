"""Project settings.

See https://docs.kedro.org/en/stable/configure/configuration_basics/ for the defaults.
"""

from pathlib import Path

from omegaconf.resolvers import oc

from neural_net_lab.hooks import InputFileHooks
from neural_net_lab.mlflow_params import TypedParamsForMlflow

HOOKS = (InputFileHooks(), TypedParamsForMlflow())

# The package lives in <root>/src/neural_net_lab; the MLflow store must be the same file
# whatever directory Kedro is started from (a notebook, a test's temporary directory).
PROJECT_ROOT = Path(__file__).resolve().parents[2]


def _project_root() -> str:
    return PROJECT_ROOT.as_posix()


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
