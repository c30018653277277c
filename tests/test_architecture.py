"""The package's shape: few top-level modules, imports flowing one way through the layers,
no import cycles (imports inside functions count), package __init__ files that import nothing."""

from __future__ import annotations

import ast
import importlib

import pytest

from architecture import PACKAGE, import_graph, module_files

# Each top-level module or folder and its layer: a module imports only from lower layers
# (and from its own folder, where the cycle test below keeps the order).
LAYERS = {
    "errors": 0,
    "paths": 0,
    "util": 1,
    "data": 2,
    "config": 3,
    "tracking": 3,
    "submission": 3,
    "features": 4,
    "models": 5,
    "evaluation": 6,
    "tuning": 7,
    "reporting": 7,
    "stages": 8,
    "runner": 9,
    "cli": 10,
}
# Imports of this package inside a function, each with its reason; every other one stands at the top.
LAZY = {
    ("houseprices.cli", "houseprices.stages.prepare"): "a command imports only its own stage",
    ("houseprices.cli", "houseprices.stages.featurize"): "a command imports only its own stage",
    ("houseprices.cli", "houseprices.stages.train"): "a command imports only its own stage",
    ("houseprices.cli", "houseprices.evaluation.fold_workers"): "houseprices train only: its fork server starts first",
    ("houseprices.cli", "houseprices.stages.ensemble"): "a command imports only its own stage",
    ("houseprices.cli", "houseprices.stages.submission"): "a command imports only its own stage",
    ("houseprices.cli", "houseprices.stages.search"): "a command imports only its own stage",
    ("houseprices.cli", "houseprices.submission"): "houseprices submit only",
    ("houseprices.cli", "houseprices.tracking.submitted"): "houseprices submit only (MLflow)",
    ("houseprices.cli", "houseprices.data.download"): "houseprices download only",
    ("houseprices.cli", "houseprices.reporting.runs"): "houseprices runs only (MLflow)",
    ("houseprices.cli", "houseprices.tracking.champion"): "houseprices champion only (MLflow)",
    ("houseprices.cli", "houseprices.tracking.tracker"): "houseprices champion only (MLflow)",
    ("houseprices.cli", "houseprices.reporting.leaderboard"): "houseprices leaderboard only",
    ("houseprices.models.registry", "houseprices.models.mlp.factory"): "torch only where a net is built",
}
MAX_TOP_LEVEL_MODULES = 10


def layer(module: str) -> str:
    return module.split(".")[1] if "." in module else ""


def test_at_most_ten_modules_at_the_top_level():
    top = [m for m, path in module_files().items() if m.count(".") == 1 and path.name != "__init__.py"]
    assert len(top) + 1 <= MAX_TOP_LEVEL_MODULES, sorted(top)  # + the package's __init__


def test_every_top_level_module_and_folder_has_a_layer():
    names = {layer(m) for m in module_files() if m != PACKAGE}
    assert names == set(LAYERS)


def test_imports_flow_down_the_layers():
    upward = [
        f"{module} imports {imp.target} (line {imp.lineno})"
        for module, imports in import_graph().items()
        if module != PACKAGE
        for imp in imports
        if imp.target != PACKAGE
        and layer(imp.target) != layer(module)
        and LAYERS[layer(imp.target)] >= LAYERS[layer(module)]
    ]
    assert not upward


def find_cycle(graph: dict[str, set[str]]) -> list[str] | None:
    """One import cycle of ``graph``, or None."""
    state: dict[str, int] = {}  # 1: on the current path, 2: done
    path: list[str] = []

    def visit(node: str) -> list[str] | None:
        state[node] = 1
        path.append(node)
        for nxt in sorted(graph.get(node, ())):
            if state.get(nxt) == 1:
                return [*path[path.index(nxt) :], nxt]
            if nxt not in state and (cycle := visit(nxt)):
                return cycle
        path.pop()
        state[node] = 2
        return None

    for start in sorted(graph):
        if start not in state and (cycle := visit(start)):
            return cycle
    return None


def test_no_import_cycles_counting_imports_inside_functions():
    graph = {m: {i.target for i in imports} - {PACKAGE} for m, imports in import_graph().items()}
    assert find_cycle(graph) is None, " -> ".join(find_cycle(graph))


def test_the_cycle_finder_finds_a_cycle():
    assert find_cycle({"a": {"b"}, "b": {"c"}, "c": {"a"}}) == ["a", "b", "c", "a"]
    assert find_cycle({"a": {"b"}, "b": set()}) is None


def test_imports_inside_functions_only_where_listed():
    lazy = {(m, i.target) for m, imports in import_graph().items() for i in imports if i.in_function}
    assert lazy == set(LAZY)


def test_package_init_files_import_nothing():
    for module, path in module_files().items():
        if path.name == "__init__.py":
            body = ast.parse(path.read_text()).body
            assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body), module


@pytest.mark.parametrize("module", sorted(module_files()))
def test_every_module_imports(module):
    """Each import names something its module still defines (a split or move can break one
    that no other test reaches)."""
    importlib.import_module(module)
