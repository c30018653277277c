"""Plot data for DVC: CSV files that ``dvc.yaml`` declares, drawn by the templates in
``.dvc/plots/``. The PNG figures for MLflow, which has no such templates, are in
:mod:`.figures`; each figure exists once for DVC, as its CSV.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from houseprices.util.files import write_csv

CURVE_COLUMNS = ["epoch", "fold", "split", "loss"]
FOLD_COLUMNS = ["fold", "log_rmse"]


def long_curves(curves: pd.DataFrame) -> pd.DataFrame:
    """One row per (epoch, fold, split): the learning-curve template draws a line per fold."""
    if not len(curves):
        return pd.DataFrame(columns=CURVE_COLUMNS)
    long = curves.melt(
        id_vars=["epoch", "fold"],
        value_vars=["train_loss", "valid_loss", "holdout_loss"],
        var_name="split",
        value_name="loss",
    ).dropna(subset=["loss"])
    long["split"] = long["split"].str.removesuffix("_loss")
    long["loss"] = long["loss"].round(6)  # float32 noise in the last digits is not a change
    return long[CURVE_COLUMNS].sort_values(["fold", "split", "epoch"], kind="stable")


def write_member_plots(plots_dir: Path, name: str, result) -> None:
    """``folds/<name>.csv`` (one log-RMSE per fold) for every model; ``curves/<name>.csv``
    only for a model trained in epochs. A model without epochs removes a stale curve file
    instead of writing a header-only one, which DVC would draw as an empty chart."""
    write_csv(
        plots_dir / "folds" / f"{name}.csv",
        pd.DataFrame(
            {"fold": [f.label for f in result.folds], "log_rmse": np.round(result.fold_scores, 6)}, columns=FOLD_COLUMNS
        ),
    )
    curve_file = plots_dir / "curves" / f"{name}.csv"
    if len(result.curves):
        write_csv(curve_file, long_curves(result.curves))
    else:
        curve_file.unlink(missing_ok=True)
