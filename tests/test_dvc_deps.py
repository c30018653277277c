"""dvc.yaml's deps cover the code of each stage: every module that ``houseprices <stage>``
imports (transitively, imports inside functions included) and that can change the stage's
outputs lies under one of the stage's deps, so `dvc repro` cannot call stale outputs up to date."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest
import yaml

from conftest import stage_env
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


def stale_in_lock(repo: Path) -> dict[str, list]:
    """What `dvc status` finds changed in a clone's code, params or commands (not in outputs,
    which a clone has yet to pull or reproduce), by stage."""
    status = subprocess.run(
        ["dvc", "status", "--json"], cwd=repo, env=stage_env(), capture_output=True, text=True, timeout=300
    )
    assert status.returncode == 0, status.stderr
    lock = yaml.safe_load((repo / "dvc.lock").read_text())["stages"]
    outs = [Path(o["path"]) for stage in lock.values() for o in stage.get("outs", [])]

    def derived(path: str) -> bool:
        return any(o == Path(path) or Path(path) in o.parents or o in Path(path).parents for o in outs)

    stale = {}
    for stage, changes in json.loads(status.stdout or "{}").items():
        for change in changes:
            deps = change.get("changed deps", {}) if isinstance(change, dict) else {"command": change}
            if found := [d for d in deps if not derived(d)]:
                stale.setdefault(stage, []).extend(found)
    return stale


def test_a_clone_of_the_last_commit_finds_its_lock_up_to_date(tmp_path):
    """A commit that changes a stage's code or params without `dvc repro` leaves dvc.lock
    behind: every teammate's clone would rerun that stage for nothing."""
    subprocess.run(["git", "clone", "-q", str(ROOT), str(tmp_path / "clone")], check=True, timeout=120)
    stale = stale_in_lock(tmp_path / "clone")
    assert stale == {}, f"dvc.lock is behind the committed code or params: run `dvc repro` and commit it ({stale})"
