"""The package's import graph, read from the source (imports inside functions included), for
the architecture and dvc.yaml-deps tests."""

from __future__ import annotations

import ast
from dataclasses import dataclass
from pathlib import Path

SRC = Path(__file__).resolve().parents[1] / "src"
PACKAGE = "houseprices"


@dataclass(frozen=True)
class Import:
    target: str  # the imported module of this package
    lineno: int
    in_function: bool


def module_files() -> dict[str, Path]:
    """Module name -> file, packages under their own name (their __init__.py)."""
    out = {}
    for path in (SRC / PACKAGE).rglob("*.py"):
        parts = list(path.relative_to(SRC).with_suffix("").parts)
        if parts[-1] == "__init__":
            parts = parts[:-1]
        out[".".join(parts)] = path
    return out


def _nodes_in_functions(tree: ast.AST) -> set[int]:
    inside = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef | ast.AsyncFunctionDef):
            inside |= {id(n) for n in ast.walk(node) if n is not node}
    return inside


def imports_of(path: Path, modules: dict[str, Path]) -> list[Import]:
    """This package's modules that ``path`` imports, wherever the import statement stands."""
    tree = ast.parse(path.read_text())
    inside = _nodes_in_functions(tree)
    found = []
    for node in ast.walk(tree):
        targets = []
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            for alias in node.names:
                sub = f"{node.module}.{alias.name}"
                targets.append(sub if sub in modules else node.module)
        elif isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        for target in targets:
            if target.split(".")[0] == PACKAGE:
                found.append(Import(target, node.lineno, id(node) in inside))
    return found


def import_graph() -> dict[str, list[Import]]:
    modules = module_files()
    return {name: imports_of(path, modules) for name, path in modules.items()}
