"""The package's import graph keeps the rooms apart (issue 18): each module under
src/neural_net_lab is parsed with ``ast`` and every import in it, lazy ones included, checked.

- A pipeline imports nothing from another pipeline, except that its ``pipeline.py`` may
  compose another's ``pipeline`` module (tuning and backprop include data_processing).
- Nothing outside pipelines/tuning imports it (the registry finds it without an import).
- A pipeline's ``nodes.py`` is imported only by its own ``pipeline.py`` (and its tests).
- The engine imports nothing from pipelines/.

The tests and the benchmarks import the package too (issue 25): a test under
``tests/pipelines/<p>/`` may import ``pipelines.<p>.nodes``; no other test and no benchmark
imports a pipeline's ``nodes.py`` (they run a pipeline's nodes as its ``pipeline.py`` wires
them, or call the shared modules the nodes call).

Code that several pipelines need lives in a named module at the package level or in the engine.
"""

from __future__ import annotations

import ast
from collections.abc import Callable
from pathlib import Path

import pytest

from tests.conftest import PROJECT_ROOT

SOURCE = PROJECT_ROOT / "src"
PIPELINES = "neural_net_lab.pipelines."


def _module(path: Path) -> str:
    dotted = ".".join(path.relative_to(SOURCE).with_suffix("").parts)
    return dotted.removesuffix(".__init__")


MODULES = {_module(path): path for path in sorted((SOURCE / "neural_net_lab").rglob("*.py"))}


def _imports(module: str, source: str) -> list[tuple[int, str]]:
    """(line, imported module) for every import in ``source``; ``from a import b`` counts as
    an import of ``a.b`` when that is a module of the package, else of ``a``."""
    is_package = module in MODULES and MODULES[module].name == "__init__.py"
    package = module if is_package else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = package.rsplit(".", node.level - 1)[0] if node.level else ""
            origin = ".".join(part for part in (base, node.module) if part)
            for alias in node.names:
                submodule = f"{origin}.{alias.name}"
                found.append((node.lineno, submodule if submodule in MODULES else origin))
    # One entry per imported module and line (``from a import b, c`` names ``a`` once).
    return [
        (line, name) for line, name in dict.fromkeys(found) if name.startswith("neural_net_lab")
    ]


def _pipeline(module: str) -> str | None:
    """The pipeline folder a module belongs to (``training`` for …pipelines.training.nodes)."""
    return module.removeprefix(PIPELINES).split(".")[0] if module.startswith(PIPELINES) else None


def another_pipelines_modules(importer: str, imported: str) -> str | None:
    home, other = _pipeline(importer), _pipeline(imported)
    if home is None or other is None or home == other:
        return None
    if importer == f"{PIPELINES}{home}.pipeline" and imported == f"{PIPELINES}{other}.pipeline":
        return None  # composition: a pipeline includes another's nodes through its pipeline
    return f"pipeline {home} may import only {PIPELINES}{other}.pipeline, from its pipeline.py"


def into_tuning(importer: str, imported: str) -> str | None:
    if _pipeline(imported) == "tuning" and _pipeline(importer) != "tuning":
        return "nothing outside pipelines/tuning imports it"
    return None


def nodes_outside_their_pipeline(importer: str, imported: str) -> str | None:
    owner = _pipeline(imported)
    if imported == f"{PIPELINES}{owner}.nodes" and importer != f"{PIPELINES}{owner}.pipeline":
        return f"{imported} is imported only by {PIPELINES}{owner}.pipeline"
    return None


def engine_into_pipelines(importer: str, imported: str) -> str | None:
    engine = importer == "neural_net_lab.engine" or importer.startswith("neural_net_lab.engine.")
    if engine and (imported + ".").startswith(PIPELINES):
        return "the engine imports nothing from pipelines/"
    return None


RULES = [
    another_pipelines_modules,
    into_tuning,
    nodes_outside_their_pipeline,
    engine_into_pipelines,
]


def _where(module: str) -> str:
    path = MODULES.get(module)
    return str(path.relative_to(PROJECT_ROOT)) if path else module


def _broken(
    rule: Callable[[str, str], str | None], graph: dict[str, list[tuple[int, str]]]
) -> list[str]:
    return [
        f"{_where(importer)}:{line}: {importer} imports {imported} ({why})"
        for importer, imports in graph.items()
        for line, imported in imports
        if (why := rule(importer, imported))
    ]


# tests/ and benchmarks/, by path: the pipeline whose tests a file holds, or None.
USERS = {
    path: path.parts[2]
    if path.parts[:2] == ("tests", "pipelines") and len(path.parts) > 3
    else None
    for folder in ("tests", "benchmarks")
    for path in (p.relative_to(PROJECT_ROOT) for p in sorted((PROJECT_ROOT / folder).rglob("*.py")))
}


def nodes_outside_their_tests(tested: str | None, imported: str) -> str | None:
    """``tested``: the pipeline whose tests the importing file holds (None: any other)."""
    owner = _pipeline(imported)
    if imported == f"{PIPELINES}{owner}.nodes" and tested != owner:
        return f"only tests/pipelines/{owner}/ imports {imported}"
    return None


def test_no_test_or_benchmark_imports_another_pipelines_nodes():
    broken = [
        f"{path}:{line}: imports {imported} ({why})"
        for path in USERS
        for line, imported in _imports(".".join(path.with_suffix("").parts), path.read_text())
        if (why := nodes_outside_their_tests(USERS[path], imported))
    ]
    assert not broken, "\n".join(broken)


def test_the_user_rule_names_the_file_and_the_import():
    imports = _imports("tests.x", "from neural_net_lab.pipelines.training.nodes import train_model")
    assert nodes_outside_their_tests("inference", imports[0][1]) == (
        f"only tests/pipelines/training/ imports {PIPELINES}training.nodes"
    )
    own = _imports("tests.x", "from neural_net_lab.pipelines.inference import nodes")
    assert nodes_outside_their_tests("inference", own[0][1]) is None
    assert nodes_outside_their_tests(None, own[0][1]) is not None  # a top-level test


@pytest.fixture(scope="module")
def graph() -> dict[str, list[tuple[int, str]]]:
    return {module: _imports(module, path.read_text()) for module, path in MODULES.items()}


def test_the_graph_sees_relative_lazy_and_composing_imports(graph):
    tuning = f"{PIPELINES}tuning"
    assert f"{PIPELINES}data_processing.pipeline" in {m for _, m in graph[f"{tuning}.pipeline"]}
    assert {f"{tuning}.reports", f"{tuning}.executor"} <= {m for _, m in graph[f"{tuning}.nodes"]}
    assert f"{PIPELINES}training.nodes" in {m for _, m in graph[f"{PIPELINES}training.pipeline"]}


@pytest.mark.parametrize("rule", RULES, ids=lambda rule: rule.__name__)
def test_no_import_breaks_the_rule(graph, rule):
    broken = _broken(rule, graph)
    assert not broken, "\n".join(broken)


@pytest.mark.parametrize(
    ("importer", "source", "rule"),
    [
        ("pipelines.transfer.nodes", "from ..evaluation.pipeline import x", 0),
        ("pipelines.tuning.pipeline", "from ..training import nodes", 0),
        ("pipelines.inference.pipeline", "import neural_net_lab.pipelines.tuning", 1),
        ("serving", "from neural_net_lab.pipelines.tuning.study import load_study", 1),
        ("pipelines.training.reports", "from .nodes import train_model", 2),
        ("engine.fit", "from ..pipelines.training.pipeline import create_pipeline", 3),
    ],
)
def test_each_rule_names_the_module_and_the_import(importer, source, rule):
    """A made-up module with one bad import: the rule says which module imports what."""
    importer = f"neural_net_lab.{importer}"
    (message,) = _broken(RULES[rule], {importer: _imports(importer, source)})
    assert f":1: {importer} imports neural_net_lab.pipelines." in message
