"""dvc.yaml's deps cover the code of each stage: every module that ``houseprices <stage>``
imports (transitively, imports inside functions included) and that can change the stage's
outputs lies under one of the stage's deps, so `dvc repro` cannot call stale outputs up to date."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml

from test_architecture import MODULES, SRC, imports_of, module_file

ROOT = SRC.parent
ENTRY = "houseprices.cli"  # `houseprices <stage>` starts here
# Modules a stage imports that cannot change what it writes to disk, each with its reason.
NOT_OUTPUT_SHAPING = {
    "houseprices.errors": "exception classes: the wording of a message changes no output",
    "houseprices.tracking": "MLflow logging, lineage and store failures: runs, not files DVC tracks",
    "houseprices.reporting.progress": "progress lines on the terminal",
}


def stage_modules(stage: str) -> set[str]:
    """The modules ``houseprices <stage>`` imports: the CLI's own top-level imports, the
    stage's module and everything those import."""
    seen, todo = set(), [ENTRY, f"houseprices.stages.{stage}"]
    while todo:
        module = todo.pop()
        if module in seen:
            continue
        seen.add(module)
        todo += [m for m, inside in imports_of(module).items() if module != ENTRY or False in inside]
    return seen


def exempt(module: str, files: dict[str, Path]) -> bool:
    if files[module].name == "__init__.py":
        return True  # package docstrings (tests/test_architecture.py keeps them import-free)
    return any(module == name or module.startswith(name + ".") for name in NOT_OUTPUT_SHAPING)


def uncovered(stage: str, deps: list[str]) -> list[str]:
    files = {m: module_file(m) for m in MODULES}
    roots = [(ROOT / d).resolve() for d in deps]
    return sorted(
        f"{files[m].relative_to(ROOT)} ({m})"
        for m in stage_modules(stage)
        if not exempt(m, files) and not any(files[m] == r or r in files[m].parents for r in roots)
    )


def stages() -> dict[str, list[str]]:
    """Stage name -> its deps (a foreach stage's ``do``), for the stages that run `houseprices`."""
    spec = yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"]
    out = {}
    for name, stage in spec.items():
        body = stage.get("do", stage)
        if body["cmd"].startswith("houseprices "):
            out[name] = body["deps"]
    return out


@pytest.mark.parametrize("stage", sorted(stages()))
def test_deps_cover_every_module_the_stage_imports(stage):
    assert uncovered(stage, stages()[stage]) == []


@pytest.mark.parametrize("stage", sorted(stages()))
def test_every_code_dep_exists(stage):
    missing = [d for d in stages()[stage] if d.startswith("src/") and not (ROOT / d).exists()]
    assert missing == []


def test_a_dropped_code_folder_is_found():
    deps = [d for d in stages()["train"] if d != "src/houseprices/models"]
    assert any("src/houseprices/models/registry.py" in line for line in uncovered("train", deps))


def defined_stages() -> set[str]:
    """The stage names dvc.yaml defines, a foreach stage's expanded over its params list."""
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    names = set()
    for name, stage in yaml.safe_load((ROOT / "dvc.yaml").read_text())["stages"].items():
        if "foreach" not in stage:
            names.add(name)
            continue
        items = params
        for key in stage["foreach"].removeprefix("${").removesuffix("}").split("."):
            items = items[key]
        names |= {f"{name}@{item}" for item in items}
    return names


def test_the_lock_file_holds_only_the_stages_dvc_yaml_defines():
    """DVC keeps a stage's entry after dvc.yaml stops defining it (a member dropped from
    ``ensemble.members``); the stale entry misleads and is parsed again by every DVC command."""
    locked, defined = set(yaml.safe_load((ROOT / "dvc.lock").read_text())["stages"]), defined_stages()
    assert locked <= defined, f"dvc.lock: delete the entries of {sorted(locked - defined)}"
    assert defined <= locked, f"dvc.lock lacks {sorted(defined - locked)}: run `dvc repro` and commit it"
