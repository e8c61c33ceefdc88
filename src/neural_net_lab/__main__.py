"""Neural Net Lab file for ensuring the package is executable
as `neural-net-lab` and `python -m neural_net_lab`
"""

import sys
from pathlib import Path
from typing import Any

from kedro.framework.cli.utils import find_run_command
from kedro.framework.project import configure_project, validate_settings


def main(*args, **kwargs) -> Any:
    package_name = Path(__file__).parent.name
    configure_project(package_name)
    # settings.py quiets third-party warnings; it must run before the plugins' commands
    # import MLflow, as it does under `kedro run`.
    validate_settings()

    interactive = hasattr(sys, "ps1")
    kwargs["standalone_mode"] = not interactive

    run = find_run_command(package_name)
    return run(*args, **kwargs)


if __name__ == "__main__":
    main()
