"""``--params block.key=value`` changes exactly that key, whatever conf/local holds (issue 24):
every ``--params`` string that README.md and docs/ show is loaded over a conf/local parameters
file with the project's config loader and compared with the load without it. Configuration
loads only; no pipeline runs."""

from __future__ import annotations

import re
import shutil
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import click
import pytest
import yaml
from kedro.config import OmegaConfigLoader
from kedro.framework.cli.utils import _split_params
from kedro.framework.startup import bootstrap_project

from neural_net_lab import run_config, settings
from neural_net_lab.config_loader import RuntimeParamsLastConfigLoader

from .conftest import PROJECT_ROOT, copy_project

DOCS = [PROJECT_ROOT / "README.md", *sorted((PROJECT_ROOT / "docs").rglob("*.md"))]
# `--params VALUE` or `--params=VALUE`, VALUE quoted or ending at a space, backtick or quote;
# a `--params` that names no key=value (prose about the option) is skipped below.
_PARAMS = re.compile(r"""--params(?:=|[ \t]+)(?:"([^"]*)"|'([^']*)'|([^\s`'"]+))""")

# What a user who configured their own table has in conf/local (issue 24), without and with a
# block that a documented command also overrides.
LOCAL_PARAMETERS = {
    "columns_only": {"columns": {"target": "price_range"}},
    "columns_and_training": {"columns": {"target": "price_range"}, "training": {"epochs": 3}},
}
_ABSENT = object()


def params_values(line: str) -> list[str]:
    values = (next(g for g in match.groups() if g is not None) for match in _PARAMS.finditer(line))
    return [value for value in values if "=" in value]


def documented_params() -> list[tuple[str, str]]:
    """(where, value) for every ``--params`` value in the README and docs, first sighting."""
    found: dict[str, str] = {}
    for path in DOCS:
        for number, line in enumerate(path.read_text().splitlines(), 1):
            for value in params_values(line):
                found.setdefault(value, f"{path.relative_to(PROJECT_ROOT)}:{number}")
    return [(where, value) for value, where in found.items()]


DOCUMENTED = documented_params()


def cli_params(value: str, where: str = "") -> dict[str, Any]:
    """``--params value`` as ``kedro run`` hands it to the session: Kedro's own click callback
    splits it at every comma and types each value (``null``, numbers, lists)."""
    option = click.Option(["--params"])
    try:
        return _split_params(click.Context(click.Command("run", params=[option])), option, value)
    except click.UsageError as error:
        pytest.fail(
            f"{where or 'a test'} shows --params {value!r}, which kedro run refuses: {error}"
        )


def flat(config: Mapping[str, Any], prefix: str = "") -> dict[str, Any]:
    """Leaves by dotted path; lists are leaves, as ``--params`` replaces them whole."""
    leaves: dict[str, Any] = {}
    for key, value in config.items():
        path = f"{prefix}{key}"
        if isinstance(value, Mapping) and value:
            leaves.update(flat(value, f"{path}."))
        else:
            leaves[path] = value
    return leaves


def load(
    project: Path,
    runtime_params: dict[str, Any] | None = None,
    loader_class: type[OmegaConfigLoader] = settings.CONFIG_LOADER_CLASS,
    key: str = "parameters",
    **extra: Any,
) -> dict[str, Any]:
    loader = loader_class(
        conf_source=str(project / "conf"),
        runtime_params=runtime_params,
        **settings.CONFIG_LOADER_ARGS,
        **extra,
    )
    return loader[key]


def changes(before: Mapping[str, Any], after: Mapping[str, Any]) -> dict[str, Any]:
    """Each dotted path whose value differs, with its value after (``_ABSENT`` if gone)."""
    old, new = flat(before), flat(after)
    return {
        path: new.get(path, _ABSENT)
        for path in old.keys() | new.keys()
        if old.get(path, _ABSENT) != new.get(path, _ABSENT)
        or type(old.get(path)) is not type(new.get(path))
    }


def assert_only_these_changed(
    before: Mapping[str, Any], after: Mapping[str, Any], params: dict[str, Any]
) -> None:
    wanted = flat(params)
    changed = changes(before, after)
    # A documented value may equal the shipped one: then nothing changes at that path.
    assert set(changed) <= set(wanted), (
        f"changed beyond --params: {sorted(set(changed) - set(wanted))}"
    )
    got = {path: after_value for path, after_value in flat(after).items() if path in wanted}
    assert {p: (type(v), v) for p, v in got.items()} == {p: (type(v), v) for p, v in wanted.items()}


@pytest.fixture(scope="module")
def conf_copy(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """One copy of the project for the module; each test writes the conf/local it needs."""
    return copy_project(tmp_path_factory.mktemp("config_loader"))


@pytest.fixture
def project(conf_copy: Path) -> Path:
    local = conf_copy / "conf" / "local"
    shutil.rmtree(local)
    local.mkdir()
    return conf_copy


def write_local(project: Path, blocks: dict[str, Any], name: str = "parameters.yml") -> None:
    (project / "conf" / "local" / name).write_text(yaml.safe_dump(blocks))


def test_the_docs_show_params():
    """The regex finds the commands (a broken pattern would leave the next tests empty)."""
    values = [value for _, value in DOCUMENTED]
    assert "training.epochs=20,training.optimizer.lr=0.003" in values
    assert "tuning.n_trials=100,tuning.timeout=null" in values
    assert len(values) >= 10


def test_the_pattern_reads_bare_quoted_and_equals_forms():
    line = (
        '`kedro run --params a.b=1,c.d=x`; kedro run --params "e.f=[1],g=h i" '
        "--params='j.k=null' --params=l=2 (`--params` values)"
    )
    assert params_values(line) == ["a.b=1,c.d=x", "e.f=[1],g=h i", "j.k=null", "l=2"]


def test_settings_use_the_project_loader():
    assert settings.CONFIG_LOADER_CLASS is RuntimeParamsLastConfigLoader


@pytest.mark.parametrize(("where", "value"), DOCUMENTED, ids=[v for _, v in DOCUMENTED])
@pytest.mark.parametrize("local", LOCAL_PARAMETERS)
def test_documented_params_change_only_their_keys(project, where, value, local):
    params = cli_params(value, where)
    write_local(project, LOCAL_PARAMETERS[local])

    assert_only_these_changed(load(project), load(project, params), params)


@pytest.mark.parametrize(("where", "value"), DOCUMENTED, ids=[v for _, v in DOCUMENTED])
def test_without_conf_local_the_load_is_kedros(project, where, value):
    params = cli_params(value, where)

    assert load(project, params) == load(project, params, OmegaConfigLoader)


def test_without_params_the_load_is_kedros(project):
    write_local(project, LOCAL_PARAMETERS["columns_and_training"])

    assert load(project) == load(project, loader_class=OmegaConfigLoader)


def test_kedros_loader_loses_the_block_that_conf_local_lacks(project):
    """The failure this loader exists for, with Kedro's stock loader: a parameters file in
    conf/local that has no ``training`` block, and ``--params training.epochs=2``."""
    write_local(project, LOCAL_PARAMETERS["columns_only"])
    params = cli_params("training.epochs=2")

    after = load(project, params, OmegaConfigLoader)

    assert after["training"] == {"epochs": 2}
    assert changes(load(project, loader_class=OmegaConfigLoader), after)["training.seed"] is _ABSENT


def test_conf_local_still_replaces_whole_blocks(project):
    """``--params`` lands in conf/local's copy of the block: keys conf/local left out stay
    out, as docs/tuning.md and the tuning tests rely on."""
    write_local(project, LOCAL_PARAMETERS["columns_and_training"])

    parameters = load(project, cli_params("training.seed=7,columns.id=id"))

    assert parameters["training"] == {"epochs": 3, "seed": 7}
    assert parameters["columns"] == {"target": "price_range", "id": "id"}


@pytest.mark.parametrize("local", LOCAL_PARAMETERS)
def test_params_can_add_a_key_and_a_block(project, local):
    write_local(project, LOCAL_PARAMETERS[local])
    params = cli_params("training.new_key=1,columns.id=row,brand_new.block.size=2")

    before, after = load(project), load(project, params)

    assert_only_these_changed(before, after, params)
    assert after["brand_new"] == {"block": {"size": 2}}


def test_an_environment_is_a_run_environment_like_local(project):
    """``--env staging`` gets the same treatment, and base alone (``--env base``) Kedro's."""
    (project / "conf" / "staging").mkdir(exist_ok=True)
    (project / "conf" / "staging" / "parameters.yml").write_text("model: {hidden_dims: [8]}\n")
    params = cli_params("training.epochs=2,model.dropout=0.1")
    try:
        staging = load(project, params, env="staging")
        assert staging["model"] == {"hidden_dims": [8], "dropout": 0.1}
        assert_only_these_changed(load(project, env="staging"), staging, params)
        assert load(project, params, env="base") == load(
            project, params, OmegaConfigLoader, env="base"
        )
    finally:
        shutil.rmtree(project / "conf" / "staging")


@pytest.mark.parametrize("key", ["catalog", "credentials", "globals", "mlflow"])
def test_other_configuration_loads_as_kedro_loads_it(project, key):
    """Only ``parameters`` changes; the catalog's ``runtime_params:`` resolver still sees the
    run's values."""
    write_local(project, LOCAL_PARAMETERS["columns_only"])
    write_local(project, {"probe": {"type": "pandas.CSVDataset",
                                    "filepath": "data/${runtime_params:training.epochs}.csv"}},
                "catalog.yml")  # fmt: skip
    write_local(project, {"store": {"password": "local"}}, "credentials.yml")
    write_local(project, {"shared": {"folder": "data"}}, "globals.yml")
    params = cli_params("training.epochs=2")
    patterns = {"mlflow": ["mlflow*", "mlflow*/**", "**/mlflow*"]}

    ours = load(project, params, key=key, config_patterns=patterns)

    assert ours == load(project, params, OmegaConfigLoader, key=key, config_patterns=patterns)
    if key == "catalog":
        assert ours["probe"]["filepath"] == "data/2.csv"


def test_project_parameters_read_conf_local_as_a_run_does(project):
    """``kedro viz`` and ``kedro registry`` build pipelines from ``run_config.parameters``, which
    makes the project's loader itself: no runtime parameters, so Kedro's result."""
    write_local(project, LOCAL_PARAMETERS["columns_and_training"])
    bootstrap_project(project)  # as kedro viz does: Kedro's settings are the project's

    parameters = run_config.parameters(project)

    assert parameters == load(project, loader_class=OmegaConfigLoader)
    assert parameters["training"] == {"epochs": 3}
