"""The package's shape beyond the import-linter contracts in pyproject.toml (`make lint`: imports
flow down the layers, no import cycles): few top-level modules, package __init__ files that
import nothing, imports inside functions only where listed, every module importable."""

from __future__ import annotations

import ast
import functools
import importlib
from pathlib import Path

import grimp
import pytest

SRC = Path(__file__).resolve().parents[1] / "src"
MODULES = sorted(
    ".".join(path.relative_to(SRC).with_suffix("").parts).removesuffix(".__init__")
    for path in (SRC / "houseprices").rglob("*.py")
)
# Imports of this package inside a function, each with its reason; every other one stands at the top.
LAZY = {
    ("houseprices.cli", "houseprices.evaluation.fold_workers"): "houseprices train only: its fork server starts first",
    ("houseprices.cli", "houseprices.submission"): "houseprices submit only",
    ("houseprices.cli", "houseprices.data.download"): "houseprices download only",
    ("houseprices.cli", "houseprices.reporting.runs"): "houseprices runs only (MLflow)",
    ("houseprices.cli", "houseprices.tracking.registry"): "houseprices champion and submit only (MLflow)",
    ("houseprices.cli", "houseprices.tracking.tracker"): "houseprices champion and submit only (MLflow)",
    ("houseprices.cli", "houseprices.reporting.leaderboard"): "houseprices leaderboard only",
    ("houseprices.models.registry", "houseprices.models.mlp.factory"): "torch only where a net is built",
}


@functools.cache
def graph() -> grimp.ImportGraph:
    """The package's imports (inside functions too), as import-linter reads them."""
    return grimp.build_graph("houseprices", cache_dir=None)


def module_file(module: str) -> Path:
    path = SRC.joinpath(*module.split("."))
    return path / "__init__.py" if path.is_dir() else path.with_suffix(".py")


@functools.cache
def imports_of(importer: str) -> dict[str, set[bool]]:
    """The package's modules ``importer`` imports -> whether each import of one stands in a function
    (grimp gives the lines, the ast the functions' lines)."""
    tree = ast.parse(module_file(importer).read_text())
    bodies = [
        range(f.lineno, f.end_lineno + 1)
        for f in ast.walk(tree)
        if isinstance(f, ast.FunctionDef | ast.AsyncFunctionDef)
    ]
    return {
        imported: {
            any(i["line_number"] in body for body in bodies)
            for i in graph().get_import_details(importer=importer, imported=imported)
        }
        for imported in graph().find_modules_directly_imported_by(importer)
    }


def test_at_most_ten_modules_at_the_top_level():
    top = [m for m in MODULES if m.count(".") == 1 and module_file(m).name != "__init__.py"]
    assert len(top) + 1 <= 10, top  # + the package's __init__


def test_imports_inside_functions_only_where_listed():
    lazy = {(m, imported) for m in MODULES for imported, inside in imports_of(m).items() if True in inside}
    assert lazy == set(LAZY)


def test_package_init_files_import_nothing():
    for path in (SRC / "houseprices").rglob("__init__.py"):
        body = ast.parse(path.read_text()).body
        assert all(isinstance(n, ast.Expr) and isinstance(n.value, ast.Constant) for n in body), path


@pytest.mark.parametrize("module", MODULES)
def test_every_module_imports(module):
    """Each import names something its module still defines (a split or move can break one
    that no other test reaches)."""
    importlib.import_module(module)
