"""``houseprices leaderboard``: every member and the ensemble, best first, with their CV
scores and times (like AutoGluon's ``leaderboard()``).

Scores come from the ensemble's report (``models/ensemble/report.json``, the members'
and the ensemble's repeated-CV log-RMSE on the same folds); times from each member's
``models/members/<name>/timing.json``, written by its train stage. Timings never go
into the declared DVC metrics, which stay byte-identical across reruns.
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from houseprices.errors import HousePricesError
from houseprices.util.files import read_json, write_json, write_text

TIMING = "timing.json"
COLUMNS = ["model", "cv_log_rmse", "cv_std", "excl_outliers", "weight", "fit_s", "predict_s", "cv_s"]


def write_timing(
    member_dir: Path, cv_seconds: float, folds: int, fit_seconds: float, predict_seconds: float, test_rows: int
) -> None:
    """Wall times of one train stage: the refit on every row, its prediction of the test
    rows, and the whole cross-validation (``folds`` fits and predictions)."""
    write_json(
        member_dir / TIMING,
        {
            "fit_seconds": round(fit_seconds, 3),
            "predict_seconds": round(predict_seconds, 3),
            "predict_rows": test_rows,
            "cv_seconds": round(cv_seconds, 3),
            "cv_fits": folds,
        },
    )


def _timing(members_dir: Path, name: str) -> dict:
    path = members_dir / name / TIMING
    return read_json(path) if path.is_file() else {}


def leaderboard(report_path: Path, members_dir: Path, ensemble_metrics: Path) -> pd.DataFrame:
    """One row per member and one for the ensemble, sorted by CV log-RMSE."""
    if not report_path.is_file() or not ensemble_metrics.is_file():
        raise HousePricesError(f"{report_path}: no ensemble report; run `dvc repro` (the ensemble stage) first")
    report, headline = read_json(report_path), read_json(ensemble_metrics)
    rows = []
    for name, scores in report["members"].items():
        t = _timing(members_dir, name)
        rows.append(
            {
                "model": name,
                "cv_log_rmse": scores["cv_log_rmse_mean"],
                "cv_std": scores["cv_log_rmse_std"],
                "excl_outliers": scores["cv_log_rmse_excl_outliers"],
                "weight": report["weights"].get(name, 0.0),
                "fit_s": t.get("fit_seconds"),
                "predict_s": t.get("predict_seconds"),
                "cv_s": t.get("cv_seconds"),
            }
        )
    used = [r for r in rows if r["weight"] != 0.0]

    def total(key):
        values = [r[key] for r in used]
        return None if any(v is None for v in values) else round(sum(values), 3)

    rows.append(
        {
            "model": f"ensemble ({headline['method']})",
            "cv_log_rmse": headline["cv_log_rmse_mean"],
            "cv_std": headline["cv_log_rmse_std"],
            "excl_outliers": headline["cv_log_rmse_excl_outliers"],
            "weight": None,
            "fit_s": total("fit_s"),
            "predict_s": total("predict_s"),
            "cv_s": total("cv_s"),
        }
    )
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("cv_log_rmse", kind="stable").reset_index(drop=True)


def to_markdown(board: pd.DataFrame) -> str:
    """A Markdown table: scores to 4 decimals, weights to 3, seconds to 1."""

    def cell(column, value):
        if value is None or (isinstance(value, float) and pd.isna(value)):
            return ""
        if column in ("cv_log_rmse", "cv_std", "excl_outliers"):
            return f"{value:.4f}"
        if column == "weight":
            return f"{value:.3f}"
        if column.endswith("_s"):
            return f"{value:.1f}"
        return str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in COLUMNS) + " |" for row in board.to_dict("records")]
    return "\n".join(lines) + "\n"


def print_leaderboard(
    out: Path = Path("metrics/leaderboard.md"),
    report_path: Path = Path("models/ensemble/report.json"),
    members_dir: Path = Path("models/members"),
    ensemble_metrics: Path = Path("metrics/ensemble.json"),
) -> pd.DataFrame:
    board = leaderboard(report_path, members_dir, ensemble_metrics)
    text = to_markdown(board)
    write_text(
        out,
        "Repeated-CV log-RMSE (same folds for every model); times in seconds on this machine "
        "(fit/predict: the refit on all rows and its test predictions; cv: all fold fits).\n\n" + text,
    )
    print(text, end="")
    return board
