"""Plot data for DVC: CSV files that ``dvc.yaml`` declares, drawn by the templates in
``.dvc/plots/`` (the PNGs for MLflow, which has no such templates, are in :mod:`.figures`)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

from houseprices.util.files import remove, write_csv


def write_member_plots(plots_dir: Path, name: str, result) -> None:
    """``folds/<name>.csv`` (one log-RMSE per fold) for every model; ``curves/<name>.csv``
    (one row per epoch, fold and split: a line per fold) only for a model trained in epochs.
    A model without epochs removes a stale curve file instead of writing a header-only one,
    which DVC would draw as an empty chart."""
    folds = pd.DataFrame({"fold": [f.label for f in result.folds], "log_rmse": np.round(result.fold_scores, 6)})
    write_csv(plots_dir / "folds" / f"{name}.csv", folds)
    curve_file = plots_dir / "curves" / f"{name}.csv"
    if not len(result.curves):
        remove(curve_file)
        return
    long = result.curves.melt(
        id_vars=["epoch", "fold"],
        value_vars=["train_loss", "valid_loss", "holdout_loss"],
        var_name="split",
        value_name="loss",
    ).dropna(subset=["loss"])
    long["split"] = long["split"].str.removesuffix("_loss")
    long["loss"] = long["loss"].round(6)  # float32 noise in the last digits is not a change
    write_csv(curve_file, long.sort_values(["fold", "split", "epoch"], kind="stable"))
