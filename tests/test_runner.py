"""The runner around every ``houseprices`` command."""

from __future__ import annotations

import argparse
import gc
import subprocess
import sys

from conftest import ROOT, stage_env
from houseprices import cli, runner
from houseprices.config import params as params_module


def test_a_command_reads_params_yaml_once(monkeypatch):
    reads, seen = [], []
    real = params_module.load_params

    def counting(path):
        reads.append(path)
        return real(path)

    monkeypatch.setattr(runner, "load_params", counting)
    monkeypatch.setattr(cli, "load_params", counting)
    params_file = str(ROOT / "params.yaml")
    args = argparse.Namespace(command="runs", params=params_file, func=lambda a: seen.append(cli._params(a)))
    runner.run_command(args)
    assert len(reads) == 1 and seen[0].seed == real(params_file).seed


def _stage_that_stops_at_its_inputs(ws, monkeypatch):
    """A workspace with params.yaml and no predictions: ``submission`` imports its stage, then stops."""
    (ws / "params.yaml").write_bytes((ROOT / "params.yaml").read_bytes())
    monkeypatch.chdir(ws)


def test_main_inside_another_program_leaves_its_garbage_collector_alone(tmp_path, monkeypatch):
    _stage_that_stops_at_its_inputs(tmp_path, monkeypatch)
    frozen = gc.get_freeze_count()
    assert cli.main(["submission"]) == 2
    assert gc.isenabled() and gc.get_freeze_count() == frozen


def test_the_houseprices_process_freezes_its_imports_and_collects_after(tmp_path, monkeypatch):
    _stage_that_stops_at_its_inputs(tmp_path, monkeypatch)
    probe = (
        "import atexit, gc, sys\n"
        "from houseprices.cli import main\n"
        "atexit.register(lambda: print('frozen', gc.get_freeze_count(), 'enabled', gc.isenabled()))\n"
        "sys.argv = ['houseprices', 'submission']\n"
        "sys.exit(main())\n"
    )
    proc = subprocess.run([sys.executable, "-c", probe], env=stage_env(), capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2, proc.stderr
    assert "houseprices submission: error:" in proc.stderr
    frozen, enabled = proc.stdout.split()[1], proc.stdout.split()[3]
    assert int(frozen) > 10_000 and enabled == "True"
