"""`dvc plots show` / `dvc plots diff` pages rendered in a real headless browser.

A small repository state (this repo's dvc.yaml, params.yaml and plot templates, tiny CSVs
in every declared place) is rendered by DVC; Debian's chromium opens the page with the
Vega scripts DVC names served from local copies (``build/vega-js/``, filled by
``.ci/run``: the machine has no CDN) and a probe that records, per chart, the marks Vega
drew, its axis and legend labels, the fitted domains and any error or warning.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest
import yaml

from conftest import ROOT, run
from houseprices.evaluation.folds import make_folds
from houseprices.reporting.dvc_plots import write_member_plots

CHROMIUM = shutil.which("chromium") or shutil.which("chromium-browser")
VEGA_JS = Path(os.environ.get("VEGA_JS_DIR", ROOT / "build" / "vega-js"))
CDN = re.compile(r'<script src="https://cdn\.jsdelivr\.net/npm/([a-z-]+@[0-9.]+)"></script>')
MEMBERS = ["mlp", "lasso", "gbm"]
# vega-embed notes that DVC's pinned Vega versions differ from the specs' "v5" schema: harmless.
VERSION_NOTE = re.compile(r"(input|compiled) spec uses Vega")


def _need(ok: bool, why: str) -> None:
    """Skip on a developer machine without the browser; CI (.ci/run installs it) fails."""
    if not ok:
        (pytest.fail if os.environ.get("CI") else pytest.skip)(why)


PROBE = """<script>
window.__plots = []; window.__console = [];
for (const level of ["warn", "error"]) {
  const orig = console[level];
  console[level] = (...args) => { window.__console.push(level + ": " + args.join(" ")); orig(...args); };
}
window.addEventListener("error", e => window.__console.push("error: " + e.message));
function __walk(node, out) {
  if (!node) return;
  if (node.marktype && node.marktype !== "group") {
    const role = node.role || "";
    const texts = (node.items || []).map(i => i.text).filter(t => t !== undefined);
    if (role === "mark") out.marks += (node.items || []).length;
    if (role === "axis-label") out.axis_labels.push(...texts);
    if (role === "legend-label") out.legend_labels.push(...texts);
  }
  for (const item of node.items || []) __walk(item, out);
}
const __embed = window.vegaEmbed;
window.vegaEmbed = function (el, spec, opts) {
  const entry = {id: el, error: null, marks: 0, axis_labels: [], legend_labels: [], domains: {},
                 title: spec && spec.title ? (spec.title.text || spec.title) : ""};
  window.__plots.push(entry);
  entry.promise = __embed(el, spec, Object.assign({renderer: "svg", actions: false}, opts || {}))
    .then(res => {
      __walk(res.view.scenegraph().root, entry);
      for (const s of ["x", "y"]) { try { entry.domains[s] = res.view.scale(s).domain(); } catch (e) {} }
    })
    .catch(err => { entry.error = String(err); });
  return entry.promise;
};
</script>"""

REPORT = """<pre id="probe-report" style="display:none"></pre><script>
Promise.allSettled(window.__plots.map(p => p.promise)).then(() => {
  document.getElementById("probe-report").textContent = JSON.stringify(
    {plots: window.__plots.map(({promise, ...rest}) => rest), console: window.__console});
});
</script>"""


def _with_local_scripts(html: str) -> str:
    def local(match: re.Match) -> str:
        path = VEGA_JS / f"{match.group(1)}.js"
        _need(path.is_file(), f"{path} missing: .ci/run fetches DVC's Vega scripts from the npm registry")
        return f'<script src="{path.as_uri()}"></script>'

    html, n = CDN.subn(local, html)
    assert n == 3, "DVC's page no longer names vega, vega-lite and vega-embed on the CDN"
    html = html.replace("</head>", PROBE + "\n</head>", 1)
    return html.replace("</body>", REPORT + "\n</body>", 1)


def render(index: Path, screenshot: Path | None = None) -> dict:
    """Open DVC's page in headless chromium; the probe's JSON report per chart."""
    probe = index.with_name("probe.html")
    probe.write_bytes(_with_local_scripts(index.read_text(encoding="utf-8")).encode("utf-8"))
    base = [
        CHROMIUM,
        "--headless",
        "--no-sandbox",
        "--disable-gpu",
        "--allow-file-access-from-files",
        "--virtual-time-budget=30000",
        "--window-size=1400,2000",
    ]
    out = subprocess.run([*base, "--dump-dom", probe.as_uri()], capture_output=True, timeout=180)
    dom = out.stdout.decode("utf-8")
    found = re.search(r'<pre id="probe-report"[^>]*>(.*?)</pre>', dom, re.S)
    assert found and found.group(1), f"the page never finished rendering:\n{out.stderr.decode()[-2000:]}"
    if screenshot is not None:
        subprocess.run([*base, f"--screenshot={screenshot}", probe.as_uri()], capture_output=True, timeout=180)
    import html as html_lib

    return json.loads(html_lib.unescape(found.group(1)))


# ------------------------------------------------------------------ fixture repo
def _plot_data(repo: Path, shift: float) -> None:
    """Tiny stand-ins for every declared plot file; ``shift`` moves the numbers between revisions."""
    rng = np.random.default_rng(int(shift * 1000))
    folds = make_folds(60, 5, 2, 0)
    epochs = np.arange(1, 7)
    curves = pd.DataFrame(
        [
            {
                "epoch": e,
                "fold": f.label,
                "train_loss": 0.5 / e + shift,
                "valid_loss": np.nan,
                "holdout_loss": 0.6 / e + shift + 0.01 * f.fold,
            }
            for f in folds
            for e in epochs
        ]
    )
    for name in MEMBERS:
        scores = list(0.12 + shift + 0.01 * rng.standard_normal(len(folds)))
        has_epochs = name == "mlp"
        write_member_plots(
            repo / "plots",
            name,
            SimpleNamespace(folds=folds, fold_scores=scores, curves=curves if has_epochs else curves.iloc[:0]),
        )
    actual = rng.normal(12.0, 0.4, 80)
    predicted = actual + rng.normal(shift, 0.1, 80)
    ens = repo / "plots" / "ensemble"
    ens.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "Id": np.arange(1, 81),
            "actual": np.exp(actual).round(2),
            "predicted": np.exp(predicted).round(2),
            "log_actual": actual.round(6),
            "log_predicted": predicted.round(6),
            "residual": (actual - predicted).round(6),
        }
    ).to_csv(ens / "oof.csv", index=False)
    pd.DataFrame({"log_predicted": predicted.round(6), "residual": (actual - predicted).round(6)}).to_csv(
        ens / "residuals.csv", index=False
    )
    pd.DataFrame({"member": MEMBERS, "weight": [0.5 - shift, 0.3 + shift, 0.2]}).to_csv(
        ens / "weights.csv", index=False
    )
    pd.DataFrame({"model": [*MEMBERS, "ensemble"], "cv_log_rmse": [0.123, 0.125 + shift, 0.133, 0.121]}).to_csv(
        ens / "scores.csv", index=False
    )
    feats = repo / "plots" / "features"
    feats.mkdir(parents=True, exist_ok=True)
    pd.DataFrame(
        {
            "column": ["PoolQC", "Alley", "LotFrontage"],
            "missing_rate": [0.99, 0.93, 0.18 + shift],
            "imputed_rate": [0.0, 0.0, 0.18],
        }
    ).to_csv(feats / "missing_rate.csv", index=False)
    pd.DataFrame({"component": np.arange(1, 11), "cumulative_explained_variance": np.linspace(0.3, 1.0, 10)}).to_csv(
        feats / "pca_variance.csv", index=False
    )


@pytest.fixture(scope="module")
def repo(tmp_path_factory) -> Path:
    """A git + DVC repo with the project's plot declarations and one committed revision
    (HEAD); the workspace holds a second, shifted one."""
    _need(CHROMIUM is not None, "chromium not installed (apt-get install chromium; .ci/run does)")
    dest = tmp_path_factory.mktemp("plots_repo")
    shutil.copytree(ROOT / ".dvc" / "plots", dest / ".dvc" / "plots")
    shutil.copy2(ROOT / ".dvc" / "config", dest / ".dvc" / "config")
    shutil.copy2(ROOT / "dvc.yaml", dest / "dvc.yaml")
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["ensemble"]["members"] = MEMBERS  # the members this fixture writes plot files for
    (dest / "params.yaml").write_text(yaml.safe_dump(params, sort_keys=False))
    _plot_data(dest, 0.0)
    for cmd in (["git", "init", "-q", "-b", "main"], ["git", "add", "-A"], ["git", "commit", "-qm", "plots"]):
        run(cmd, dest)
    _plot_data(dest, 0.02)
    return dest


def _dvc_page(repo: Path, *args: str) -> Path:
    out = run(["dvc", "plots", *args, "-o", "page"], repo)
    assert "failed" not in (out.stdout + out.stderr).lower(), out.stdout + out.stderr
    return repo / "page" / "index.html"


def _assert_drawn(report: dict) -> list[dict]:
    plots = report["plots"]
    assert [m for m in report["console"] if not VERSION_NOTE.search(m)] == []
    for plot in plots:
        assert plot["error"] is None, plot
        assert plot["marks"] > 0, f"empty chart: {plot}"
        assert not any("â" in t or "�" in t for t in plot["axis_labels"]), plot["axis_labels"]
    return plots


def _by_title(plots: list[dict], words: str) -> dict:
    matches = [p for p in plots if words in str(p["title"])]
    assert len(matches) == 1, [p["title"] for p in plots]
    return matches[0]


@pytest.mark.xdist_group(name="test_plots_render:repo")
def test_plots_show_draws_every_chart_once(repo, tmp_path):
    page = _dvc_page(repo, "show")
    assert '<meta charset="utf-8">' in page.read_text(encoding="utf-8")  # .dvc/config plots.html_template
    plots = _assert_drawn(render(page, _screenshot_path("plots_show")))
    # 2 features + 3 fold charts + 1 learning curve (mlp only) + 4 ensemble; no PNG duplicates
    assert len(plots) == 10, [p["title"] for p in plots]
    assert not list((repo / "page").rglob("*.png"))
    curves = _by_title(plots, "learning curves")
    assert curves["domains"]["x"] == [1, 6] and {"train", "holdout"} <= set(curves["legend_labels"])
    for words in ("prediction vs actual", "residuals"):
        chart = _by_title(plots, words)
        assert min(chart["domains"]["x"]) > 5, chart["domains"]  # fitted to log prices, not from 0
    residuals = _by_title(plots, "residuals")
    assert any(t.startswith("\u2212") for t in residuals["axis_labels"]), residuals["axis_labels"]


@pytest.mark.xdist_group(name="test_plots_render:repo")
def test_plots_diff_tells_revisions_apart(repo):
    plots = _assert_drawn(render(_dvc_page(repo, "diff", "HEAD"), _screenshot_path("plots_diff")))
    assert len(plots) == 10
    for plot in plots:
        assert {"HEAD", "workspace"} <= set(plot["legend_labels"]), (plot["title"], plot["legend_labels"])


@pytest.mark.xdist_group(name="test_plots_render:repo")
def test_a_header_only_plot_file_fails_the_check(repo, tmp_path):
    broken = tmp_path / "broken"
    shutil.copytree(repo, broken)
    (broken / "plots" / "ensemble" / "weights.csv").write_text("member,weight\n")
    report = render(_dvc_page(broken, "show"))
    with pytest.raises(AssertionError, match="empty chart"):
        _assert_drawn(report)


def _screenshot_path(name: str) -> Path | None:
    """Screenshots for people, only when asked: PLOTS_SCREENSHOTS=<folder>."""
    folder = os.environ.get("PLOTS_SCREENSHOTS")
    return Path(folder) / f"{name}.png" if folder else None


def test_member_plots_hold_fold_scores_and_curves_only_for_epoch_models(tmp_path):
    folds = make_folds(20, 2, 1, 0)
    curves = pd.DataFrame(
        {
            "epoch": [1, 2, 1, 2],
            "fold": ["r1f1", "r1f1", "r1f2", "r1f2"],
            "train_loss": [0.5, 0.25, 0.6, 0.3],
            "valid_loss": np.nan,
            "holdout_loss": [0.55, 0.333333333, 0.65, 0.35],
        }
    )
    write_member_plots(tmp_path, "mlp", SimpleNamespace(folds=folds, fold_scores=[0.1234567, 0.2], curves=curves))
    scores = pd.read_csv(tmp_path / "folds" / "mlp.csv")
    assert scores.to_dict("list") == {"fold": ["r1f1", "r1f2"], "log_rmse": [0.123457, 0.2]}
    long = pd.read_csv(tmp_path / "curves" / "mlp.csv")
    assert list(long.columns) == ["epoch", "fold", "split", "loss"] and len(long) == 8
    assert set(long["split"]) == {"train", "holdout"} and 0.333333 in set(long["loss"])
    # The same name retrained as a model without epochs leaves no (stale or empty) curve file.
    write_member_plots(tmp_path, "mlp", SimpleNamespace(folds=folds, fold_scores=[0.1, 0.2], curves=curves.iloc[:0]))
    assert not (tmp_path / "curves" / "mlp.csv").exists()
    assert (tmp_path / "folds" / "mlp.csv").is_file()
