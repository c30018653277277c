"""The ensemble's PNG figures, drawn in another process while the stage logs to MLflow: the
stage's own process never imports matplotlib, and a drawing that fails fails the stage."""

from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import pytest

from houseprices.reporting.figures import drawn_aside

FIGURES = ["predicted_vs_actual.png", "residuals.png", "weights.png", "scores.png"]


def figure_data(n: int = 50) -> dict:
    rng = np.random.default_rng(0)
    actual = rng.normal(12, 0.4, n)
    return {
        "log_actual": actual,
        "log_predicted": actual + rng.normal(0, 0.1, n),
        "weights": {"lasso": 0.4, "mlp": 0.6},
        "scores": {"lasso": 0.122, "mlp": 0.119, "ensemble": 0.117},
    }


DRAW = """
import json, sys
from pathlib import Path
import numpy as np
from houseprices.reporting.figures import drawn_aside
data = {"log_actual": np.linspace(11, 13, 20), "log_predicted": np.linspace(11.1, 12.9, 20),
        "weights": {"a": 1.0}, "scores": {"a": 0.12, "ensemble": 0.11}}
with drawn_aside(Path(sys.argv[1]), **data) as pngs:
    paths = pngs.result(timeout=120)
print(json.dumps({"paths": [p.name for p in paths], "pyplot_here": "matplotlib.pyplot" in sys.modules}))
"""


def test_the_figures_are_drawn_in_another_process(tmp_path):
    done = subprocess.run(
        [sys.executable, "-c", DRAW, str(tmp_path)], capture_output=True, text=True, timeout=180, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"paths": FIGURES, "pyplot_here": False}
    for name in FIGURES:
        assert (tmp_path / name).read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_a_figure_that_cannot_be_drawn_is_the_stages_error(tmp_path):
    data = {**figure_data(), "log_actual": np.array([])}  # no rows: no axis limits to draw
    with pytest.raises(ValueError), drawn_aside(tmp_path, **data) as pngs:
        pngs.result(timeout=120)
    assert not list(tmp_path.glob("*.png"))
