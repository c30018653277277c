"""``houseprices leaderboard``: every member and the ensemble, best first, with their CV
scores (from the ensemble's report: the same folds for all) and times (the last finished
``train <member>`` run in MLflow: outputs hold no wall-clock value, so reruns keep dvc.lock).
"""

from __future__ import annotations

from pathlib import Path

import pandas as pd

from houseprices.errors import HousePricesError
from houseprices.reporting.runs import member_times
from houseprices.util.files import read_json, write_text

COLUMNS = ["model", "cv_log_rmse", "cv_std", "excl_outliers", "weight", "fit_s", "predict_s", "cv_s"]
SCORES = {"cv_log_rmse": "cv_log_rmse_mean", "cv_std": "cv_log_rmse_std", "excl_outliers": "cv_log_rmse_excl_outliers"}
TIMES = {"fit_s": "fit_seconds", "predict_s": "predict_seconds", "cv_s": "cv_seconds"}
DECIMALS = {"cv_log_rmse": 4, "cv_std": 4, "excl_outliers": 4, "weight": 3, "fit_s": 1, "predict_s": 1, "cv_s": 1}


def leaderboard(report_path: Path, ensemble_metrics: Path, times: dict[str, dict]) -> pd.DataFrame:
    """One row per member and one for the ensemble, sorted by CV log-RMSE; ``times``: each
    member's ``fit_seconds``, ``predict_seconds`` and ``cv_seconds``, where known."""
    if not report_path.is_file() or not ensemble_metrics.is_file():
        raise HousePricesError(f"{report_path}: no ensemble report; run `dvc repro` (the ensemble stage) first")
    report, headline = read_json(report_path), read_json(ensemble_metrics)

    def scores(s: dict) -> dict:
        return {column: s[key] for column, key in SCORES.items()}

    rows = []
    for name, member in report["members"].items():
        timing = times.get(name, {})
        weight = report["weights"].get(name, 0.0)
        rows.append({"model": name, **scores(member), "weight": weight, **{c: timing.get(k) for c, k in TIMES.items()}})
    used = [r for r in rows if r["weight"] != 0.0]

    def total(column):
        values = [r[column] for r in used]
        return None if any(v is None for v in values) else round(sum(values), 3)

    rows.append({"model": f"ensemble ({headline['method']})", **scores(headline), **{c: total(c) for c in TIMES}})
    return pd.DataFrame(rows, columns=COLUMNS).sort_values("cv_log_rmse", kind="stable").reset_index(drop=True)


def to_markdown(board: pd.DataFrame) -> str:
    def cell(column, value):
        if pd.isna(value):
            return ""
        return f"{value:.{DECIMALS[column]}f}" if column in DECIMALS else str(value)

    lines = ["| " + " | ".join(COLUMNS) + " |", "|" + " --- |" * len(COLUMNS)]
    lines += ["| " + " | ".join(cell(c, row[c]) for c in COLUMNS) + " |" for row in board.to_dict("records")]
    return "\n".join(lines) + "\n"


def print_leaderboard(
    params,
    out: Path = Path("metrics/leaderboard.md"),
    report_path: Path = Path("models/ensemble/report.json"),
    ensemble_metrics: Path = Path("metrics/ensemble.json"),
) -> pd.DataFrame:
    board = leaderboard(report_path, ensemble_metrics, member_times(params, params.ensemble_members))
    text = to_markdown(board)
    write_text(
        out,
        "Repeated-CV log-RMSE (same folds for every model); times in seconds on this machine "
        "(fit/predict: the refit on all rows and its test predictions; cv: all fold fits).\n\n" + text,
    )
    print(text, end="")
    return board
