"""The package uses PyTorch's and Optuna's public APIs only (issue 25): every module under
src/ is parsed with ``ast``, and each rule below names the lines that break it.

Private names change or vanish in any release, and the project declares a range of torch
and Optuna versions (the minimum-versions job in .ci/run tests its lower end):

- no ``torch._…`` or ``optuna._…`` (attributes, imports), dunders such as
  ``torch.__version__`` aside;
- no ``torch.ops.…`` (operators called past their Python API);
- no ``._storage`` read on another object (Optuna's private storage handle of a study);
- no optimizer setting, by name, that exists only in some torch versions (read a param
  group for what the documentation promises, or let the optimizer's own ``step()`` use it).
"""

from __future__ import annotations

import ast
from collections.abc import Iterator

import pytest

from tests.conftest import PROJECT_ROOT

SOURCES = sorted((PROJECT_ROOT / "src").rglob("*.py"))
PRIVATE_ROOTS = ("torch", "optuna")
# Param-group or state keys that exist only in some of the torch versions pyproject.toml
# declares (decoupled_weight_decay: Adam's groups since torch 2.6, not in 2.4).
VERSION_SPECIFIC_OPTIMIZER_KEYS = {"decoupled_weight_decay"}


def _dotted(node: ast.AST) -> list[str] | None:
    """``torch._foo.bar`` as ["torch", "_foo", "bar"]; None for anything but names."""
    parts = []
    while isinstance(node, ast.Attribute):
        parts.append(node.attr)
        node = node.value
    if not isinstance(node, ast.Name):
        return None
    return [node.id, *reversed(parts)]


def _chains(tree: ast.AST) -> Iterator[ast.Attribute]:
    """Attribute chains, each once (``a.b.c``, not also its ``a.b``)."""
    inner = {id(n.value) for n in ast.walk(tree) if isinstance(n, ast.Attribute)}
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute) and id(node) not in inner:
            yield node


def _private(parts: list[str]) -> bool:
    return any(p.startswith("_") and not p.startswith("__") for p in parts[1:])


def private_names(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in _chains(tree):
        parts = _dotted(node)
        if parts and parts[0] in PRIVATE_ROOTS and _private(parts):
            yield node.lineno, ".".join(parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            for alias in node.names:
                parts = alias.name.split(".")
                if parts[0] in PRIVATE_ROOTS and _private(parts):
                    yield node.lineno, f"import {alias.name}"
        elif isinstance(node, ast.ImportFrom) and node.module and not node.level:
            parts = node.module.split(".")
            if parts[0] in PRIVATE_ROOTS:
                for alias in node.names:
                    if _private([*parts, alias.name]):
                        yield node.lineno, f"from {node.module} import {alias.name}"


def operators(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in _chains(tree):
        parts = _dotted(node)
        if parts and parts[:2] == ["torch", "ops"]:
            yield node.lineno, ".".join(parts)
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and not node.level:
            if node.module.startswith("torch.ops") or (
                node.module == "torch" and any(a.name == "ops" for a in node.names)
            ):
                yield node.lineno, f"from {node.module} import ..."


def study_storage(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if (
            isinstance(node, ast.Attribute)
            and node.attr == "_storage"
            and not isinstance(node.ctx, ast.Store)
            and not (isinstance(node.value, ast.Name) and node.value.id == "self")
        ):
            yield node.lineno, ast.unparse(node)


def version_specific_keys(tree: ast.AST) -> Iterator[tuple[int, str]]:
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and node.value in VERSION_SPECIFIC_OPTIMIZER_KEYS:
            yield node.lineno, repr(node.value)


def _broken(rule) -> list[str]:
    found = []
    for path in SOURCES:
        tree = ast.parse(path.read_text(), filename=str(path))
        relative = path.relative_to(PROJECT_ROOT)
        found += [f"{relative}:{line}: {text}" for line, text in rule(tree)]
    return found


@pytest.mark.parametrize(
    "rule",
    [
        private_names,
        operators,
        study_storage,
        version_specific_keys,
    ],
)
def test_src_uses_public_apis_only(rule):
    assert _broken(rule) == []


def test_the_rules_find_what_they_name():
    source = """
import torch._dynamo
from torch import _C
from torch.ops import aten
from optuna.storages import _heartbeat
torch._fused_adam_(params)
torch.ops.aten.leaky_relu_backward(d, z, 0.01, False)
storage = study._storage
self._storage = storage
kernel = torch._fused_adamw_ if group["decoupled_weight_decay"] else None
version = torch.__version__
"""
    tree = ast.parse(source)
    assert sorted(line for line, _ in private_names(tree)) == [2, 3, 5, 6, 10]
    assert sorted(line for line, _ in operators(tree)) == [4, 7]
    assert [text for _, text in study_storage(tree)] == ["study._storage"]
    assert [line for line, _ in version_specific_keys(tree)] == [10]
