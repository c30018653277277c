"""The runner around every ``houseprices`` command."""

from __future__ import annotations

import argparse

from conftest import ROOT
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
