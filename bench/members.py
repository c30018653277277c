"""Screen candidate members on the same folds, then the ensembles they make.

Each candidate is a ``models.<name>`` entry (and optional ``features`` overrides) on top
of params.yaml, cross-validated with ``cv.repeats`` 1 (5 folds, the pipeline's seed), or
``--repeats 3`` for the pipeline's 3 x 5.
Out-of-fold predictions are cached per candidate (CACHE/<name>.npz, keyed by its config),
so a rerun only fits what changed. Then every ensemble method is scored by nested CV on
the chosen members, and greedy selection over all candidates shows which ones it keeps.

    python bench/members.py                      # every candidate, then the ensembles
    python bench/members.py lgb xgb --only       # just these
    python bench/members.py --members mlp lasso xgb   # ensemble of these (cached) only
    python bench/members.py mlp mlp_swa50_fe --only --repeats 3   # 3 x 5 CV
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import time
from pathlib import Path

import numpy as np

from houseprices.config.params import load_params, parse_params
from houseprices.data.prepared import load_prepared
from houseprices.evaluation.cross_validation import cross_validate
from houseprices.evaluation.ensemble import choose_method, greedy_weights
from houseprices.evaluation.folds import log_rmse, make_folds
from houseprices.evaluation.outliers import outlier_mask
from houseprices.util.threads import limit_threads

CACHE = Path(os.environ.get("BENCH_CACHE", "/tmp/score_bench"))
TE = {"target_encoding": {"enabled": True}}
INTER = {"interactions": {"enabled": True}}
BOTH = {**TE, **INTER}

# LightGBM with squared loss and small trees (its defaults before the Huber member).
LGB_L2 = {
    "kind": "lightgbm",
    "n_estimators": 1500,
    "learning_rate": 0.02,
    "num_leaves": 6,
    "min_child_samples": 10,
    "colsample_bytree": 0.25,
    "objective": "regression",
}

# name -> (models entry, features overrides); a "base" key starts from params.yaml's entry.
CANDIDATES: dict[str, tuple[dict, dict]] = {
    "mlp": ({"base": "mlp"}, {}),
    "mlp_fe": ({"base": "mlp"}, BOTH),
    "mlp_rank": ({"base": "mlp", "input_transform": "gaussian_rank"}, {}),
    "mlp_rank_fe": ({"base": "mlp", "input_transform": "gaussian_rank"}, BOTH),
    "mlp_inter": ({"base": "mlp"}, INTER),
    "mlp_seeds3_fe": ({"base": "mlp", "n_seeds": 3}, BOTH),
    "lasso": ({"base": "lasso"}, {}),
    "lasso_inter": ({"base": "lasso"}, INTER),
    "lasso_te": ({"base": "lasso"}, TE),
    "lasso_fe": ({"base": "lasso"}, BOTH),
    "enet_fe": ({"base": "elastic_net"}, BOTH),
    "ridge_fe": ({"base": "ridge"}, BOTH),
    "krr": ({"base": "kernel_ridge"}, {}),
    "krr_fe": ({"base": "kernel_ridge"}, BOTH),
    "gbm": ({"base": "gbm"}, {}),
    "svr": ({"kind": "svr", "C": 20.0, "epsilon": 0.008, "gamma": 0.0003}, {}),
    "svr_g1e4": ({"kind": "svr", "C": 10.0, "epsilon": 0.01, "gamma": 0.0001}, BOTH),
    "svr_g3e4_fe": ({"kind": "svr", "C": 3.0, "epsilon": 0.01, "gamma": 0.0003}, BOTH),
    "lgb": (LGB_L2, {}),
    "lgb_fe": (LGB_L2, BOTH),
    "lgb_fast": ({**LGB_L2, "n_estimators": 600, "learning_rate": 0.05}, BOTH),
    "xgb": ({"kind": "xgboost", "n_estimators": 1500, "learning_rate": 0.02}, {}),
    "xgb_fe": ({"kind": "xgboost", "n_estimators": 1500, "learning_rate": 0.02}, BOTH),
    "xgb_fast": ({"kind": "xgboost", "n_estimators": 600, "learning_rate": 0.05}, BOTH),
    "cat": ({"kind": "catboost", "iterations": 800, "learning_rate": 0.06, "depth": 5}, {}),
    "cat_codes": (
        {"kind": "catboost", "iterations": 800, "learning_rate": 0.06, "depth": 5, "native_categorical": False},
        BOTH,
    ),
    "gbr_huber": ({"kind": "gradient_boosting", "n_estimators": 1000, "learning_rate": 0.05}, {}),
    "gbr_huber_fe": ({"kind": "gradient_boosting", "n_estimators": 1000, "learning_rate": 0.05}, BOTH),
    "gbr_fast_fe": ({"kind": "gradient_boosting", "n_estimators": 300, "learning_rate": 0.1, "max_depth": 3}, BOTH),
    "xgb_fast_inter": ({"kind": "xgboost", "n_estimators": 600, "learning_rate": 0.05}, INTER),
    "xgb_fast_plain": ({"kind": "xgboost", "n_estimators": 600, "learning_rate": 0.05}, {}),
    "xgb_fast_keep": (
        {"kind": "xgboost", "n_estimators": 600, "learning_rate": 0.05},
        {**BOTH, "outliers": {"enabled": False}},
    ),
    "svr_keep": ({"kind": "svr", "C": 3.0, "epsilon": 0.01, "gamma": 0.0003}, {**BOTH, "outliers": {"enabled": False}}),
    "cat_fast_fe": ({"kind": "catboost", "iterations": 400, "learning_rate": 0.1, "depth": 4}, BOTH),
    "lgb_huber_fe": ({**LGB_L2, "objective": "huber", "huber_delta": 0.1}, BOTH),
    "lgb_huber05_fe": ({**LGB_L2, "objective": "huber", "huber_delta": 0.05}, BOTH),
    "lgb_huber_deep_fe": ({"base": "lightgbm"}, BOTH),  # the default lightgbm member
    "mlp_emb4_fe": ({"base": "mlp", "embedding_dim": 4}, BOTH),
    "mlp_emb4_wd_fe": ({"base": "mlp", "embedding_dim": 4, "embedding_weight_decay": 7.0}, BOTH),
    "mlp_noise_fe": ({"base": "mlp", "input_noise": 0.1}, BOTH),
    "mlp_emb2_fe": ({"base": "mlp", "embedding_dim": 2}, BOTH),
    "mlp_emb4_wd1_fe": ({"base": "mlp", "embedding_dim": 4, "embedding_weight_decay": 1.0}, BOTH),
    "mlp_256_fe": ({"base": "mlp", "hidden": [256]}, BOTH),
    "mlp_wd10_fe": ({"base": "mlp", "weight_decay": 10.0}, BOTH),
    "mlp_wd5_fe": ({"base": "mlp", "weight_decay": 5.0}, BOTH),
    "mlp_e200_fe": ({"base": "mlp", "epochs": 200}, BOTH),
    "mlp_rank_emb4_fe": ({"base": "mlp", "input_transform": "gaussian_rank", "embedding_dim": 4}, BOTH),
    "mlp_emb8_fe": ({"base": "mlp", "embedding_dim": 8}, BOTH),
    "lgb_huber2_fe": ({**LGB_L2, "objective": "huber", "huber_delta": 0.2}, BOTH),
    "gbr_300_fe": ({"kind": "gradient_boosting", "n_estimators": 300, "learning_rate": 0.15}, BOTH),
    # Weight averaging over the last epochs: the cosine tail as is, or SWA's held rate.
    "mlp_swa20_fe": ({"base": "mlp", "swa_fraction": 0.2}, BOTH),
    "mlp_swa50_fe": ({"base": "mlp", "swa_fraction": 0.5}, BOTH),
    "mlp_swa30_lr5e4_fe": ({"base": "mlp", "swa_fraction": 0.3, "swa_lr": 0.0005}, BOTH),
    "mlp_swa50_lr3e4_fe": ({"base": "mlp", "swa_fraction": 0.5, "swa_lr": 0.0003}, BOTH),
    "mlp_swa30_lr1e3_fe": ({"base": "mlp", "swa_fraction": 0.3, "swa_lr": 0.001}, BOTH),
    "mlp_swa50_lr2e3_fe": ({"base": "mlp", "swa_fraction": 0.5, "swa_lr": 0.002}, BOTH),
    "mlp_swa80_fe": ({"base": "mlp", "swa_fraction": 0.8}, BOTH),
    "mlp_e200_swa100_fe": ({"base": "mlp", "epochs": 200, "swa_fraction": 0.5}, BOTH),
    "mlp_e200_swa100_lr5e4_fe": ({"base": "mlp", "epochs": 200, "swa_fraction": 0.5, "swa_lr": 0.0005}, BOTH),
    "mlp_lr3e3_swa50_fe": ({"base": "mlp", "lr": 0.003, "weight_decay": 3.0, "swa_fraction": 0.5}, BOTH),
    "mlp_bs32_swa50_fe": ({"base": "mlp", "batch_size": 32, "swa_fraction": 0.5}, BOTH),
    "mlp_wd5_swa50_fe": ({"base": "mlp", "weight_decay": 5.0, "swa_fraction": 0.5}, BOTH),
    "mlp_wd10_swa50_fe": ({"base": "mlp", "weight_decay": 10.0, "swa_fraction": 0.5}, BOTH),
    "mlp_lr3e3_fe": ({"base": "mlp", "lr": 0.003, "weight_decay": 3.0}, BOTH),  # the control of the one above
    "mlp_lr3e3_swa80_fe": ({"base": "mlp", "lr": 0.003, "weight_decay": 3.0, "swa_fraction": 0.8}, BOTH),
    "mlp_lr3e3_swa50_lr1e3_fe": (
        {"base": "mlp", "lr": 0.003, "weight_decay": 3.0, "swa_fraction": 0.5, "swa_lr": 0.001},
        BOTH,
    ),
    "mlp_lr3e3_wd2_swa50_fe": ({"base": "mlp", "lr": 0.003, "weight_decay": 2.0, "swa_fraction": 0.5}, BOTH),
    "mlp_lr1e2_wd07_swa50_fe": ({"base": "mlp", "lr": 0.01, "weight_decay": 0.7, "swa_fraction": 0.5}, BOTH),
    "mlp_lr3e3_wd4_swa80_fe": ({"base": "mlp", "lr": 0.003, "weight_decay": 4.0, "swa_fraction": 0.8}, BOTH),
    "mlp_lr3e3_swa90_fe": ({"base": "mlp", "lr": 0.003, "weight_decay": 3.0, "swa_fraction": 0.9}, BOTH),
    "mlp_lr3e3_swa80_lr3e3_fe": (
        {"base": "mlp", "lr": 0.003, "weight_decay": 3.0, "swa_fraction": 0.8, "swa_lr": 0.003},
        BOTH,
    ),
    "mlp_lr5e3_swa80_fe": ({"base": "mlp", "lr": 0.005, "weight_decay": 3.0, "swa_fraction": 0.8}, BOTH),
    "mlp_lr2e3_wd4_swa80_fe": ({"base": "mlp", "lr": 0.002, "weight_decay": 4.0, "swa_fraction": 0.8}, BOTH),
    "mlp_e150_lr3e3_swa120_fe": (
        {"base": "mlp", "epochs": 150, "lr": 0.003, "weight_decay": 3.0, "swa_fraction": 0.8},
        BOTH,
    ),
    # SWA at a held rate: lr (then the held swa_lr) and weight decay around 3e-3 and 3.
    **{
        f"mlp_c{lr * 1e4:g}e4_wd{wd:g}_swa{k}_fe".replace(".", "p"): (
            {"base": "mlp", "lr": lr, "weight_decay": wd, "swa_fraction": k / 100, "swa_lr": lr},
            BOTH,
        )
        for lr, wd, k in [
            (0.003, 3.0, 90),
            (0.005, 3.0, 80),
            (0.003, 2.0, 80),
            (0.003, 4.0, 80),
            (0.002, 4.0, 80),
            (0.005, 2.0, 80),
            (0.003, 3.0, 60),
            (0.01, 1.0, 80),
            (0.01, 2.0, 80),
            (0.007, 1.5, 80),
            (0.007, 2.0, 80),
            (0.005, 1.5, 80),
            (0.005, 2.0, 60),
            (0.01, 3.0, 80),
            (0.015, 2.0, 80),
            (0.02, 2.0, 80),
            (0.01, 2.0, 60),
            (0.015, 1.5, 80),
        ]
    },
    "mlp_lr5e3_wd2_fe": ({"base": "mlp", "lr": 0.005, "weight_decay": 2.0}, BOTH),  # the control: no averaging
    # Optional features on top of interactions and target statistics.
    **{
        f"{name}_{short}": ({"base": base}, {**BOTH, section: {"enabled": True}})
        for name, base in [("lasso", "lasso"), ("mlp", "mlp"), ("xgb", "xgboost"), ("svr", "svr"), ("lgb", "lightgbm")]
        for short, section in [("nrel", "neighborhood_relative"), ("qs", "quality_score")]
    },
    # The MLP default before weight averaging (the candidates above were screened from it: "base"
    # entries start from params.yaml as it was then).
    "mlp_pre_swa_fe": (
        {"base": "mlp", "lr": 0.001, "weight_decay": 7.0, "lr_schedule": "cosine", "swa_fraction": 0.0},
        BOTH,
    ),
    # The same as mlp_c70e4_wd2_swa80_fe (a held rate equal to lr is a constant rate): the default since.
    "mlp_swa_const_fe": (
        {"base": "mlp", "lr": 0.007, "weight_decay": 2.0, "lr_schedule": "none", "swa_fraction": 0.8, "swa_lr": None},
        BOTH,
    ),
    "mlp_const_fe": (
        {"base": "mlp", "lr": 0.007, "weight_decay": 2.0, "lr_schedule": "none", "swa_fraction": 0.0, "swa_lr": None},
        BOTH,
    ),  # its control: the same rate, no averaging
    # Each default member with one more global preprocessing option (the `_d` rows: as params.yaml).
    **{
        f"{short}_{option}": ({"base": base}, {**BOTH, **extra})
        for short, base in [("mlp", "mlp"), ("lasso", "lasso"), ("xgb", "xgboost"), ("svr", "svr"), ("lgb", "lightgbm")]
        for option, extra in [
            ("d", {}),
            ("oq", {"encoding": {"ordinal_quality": True}}),
            ("mi", {"impute": {"missing_indicators": True}}),
        ]
    },
    # The weight-averaged default MLP with one more change.
    **{
        f"mlp_{short}": ({"base": "mlp", **change}, BOTH)
        for short, change in [
            ("h256", {"hidden": [256]}),
            ("h64", {"hidden": [64]}),
            ("h128x2", {"hidden": [128, 128]}),
            ("do1", {"dropout": 0.1}),
            ("e150", {"epochs": 150}),
            ("bs32", {"batch_size": 32}),
            ("bs128", {"batch_size": 128}),
            ("lr1e2", {"lr": 0.01}),
            ("wd3", {"weight_decay": 3.0}),
            ("wd1p5", {"weight_decay": 1.5}),
            ("relu", {"activation": "relu"}),
            ("mse", {"loss": "mse"}),
            ("bn", {"batch_norm": True}),
        ]
    },
}


def candidate_params(base, name: str, repeats: int = 1):
    model, features = CANDIDATES[name]
    raw = base.model_dump(mode="json")
    entry = dict(model)
    if "base" in entry:
        entry = {**raw["models"][entry.pop("base")], **entry}
    if entry.get("kind") in ("lightgbm", "xgboost"):
        entry.setdefault("n_jobs", 1)
    if entry.get("kind") == "catboost":
        entry.setdefault("thread_count", 1)
    for section in (
        "interactions",
        "target_encoding",
        "neighborhood_relative",
        "quality_score",
    ):  # off unless the candidate names them
        raw["features"][section] = {**raw["features"][section], "enabled": False}
    raw["models"] = {name: entry}
    raw["ensemble"] = {**raw["ensemble"], "members": [name]}
    for section, values in features.items():
        raw["features"][section] = {**raw["features"][section], **values}
    raw["cv"] = {"folds": 5, "repeats": repeats}
    raw.pop("search", None)
    return parse_params(raw)


def oof_for(base, name: str, X, y, repeats: int = 1) -> tuple[np.ndarray, float]:
    """(repeats, rows) out-of-fold predictions and seconds per fit."""
    params = candidate_params(base, name, repeats)
    key = hashlib.sha256(json.dumps(params.model_dump(mode="json"), sort_keys=True).encode()).hexdigest()[:12]
    path = CACHE / f"{name}-{key}.npz"
    if path.is_file():
        saved = np.load(path)
        return np.atleast_2d(saved["oof"]), float(saved["seconds"])
    start = time.perf_counter()
    result = cross_validate(name, params, X, y)
    seconds = (time.perf_counter() - start) / len(result.folds)
    CACHE.mkdir(parents=True, exist_ok=True)
    np.savez(path, oof=result.oof, seconds=seconds)
    return result.oof, seconds


def cached(name: str, repeats: int = 1) -> tuple[np.ndarray, float]:
    """The newest cached OOF of a candidate with this many repeats, whatever its config hash."""
    paths = [p for p in CACHE.glob(f"{name}-*.npz") if np.atleast_2d(np.load(p)["oof"]).shape[0] == repeats]
    saved = np.load(max(paths, key=lambda p: p.stat().st_mtime))
    return np.atleast_2d(saved["oof"]), float(saved["seconds"])


def score_rows(pred, y, folds, rows):
    return float(np.mean([log_rmse(y[f.valid[rows[f.valid]]], pred[f.repeat, f.valid[rows[f.valid]]]) for f in folds]))


def report_members(names, oofs, seconds, y, folds, typical):
    print(f"{'member':<16}{'cv':>9}{'excl':>9}{'s/fit':>8}")
    for n in sorted(names, key=lambda n: score_rows(oofs[n], y, folds, np.ones(len(y), bool))):
        print(
            f"{n:<16}{score_rows(oofs[n], y, folds, np.ones(len(y), bool)):>9.5f}"
            f"{score_rows(oofs[n], y, folds, typical):>9.5f}{seconds[n]:>8.2f}",
            flush=True,
        )


def report_ensembles(names, oofs, y, folds, typical, fit_rows):
    stack = np.stack([oofs[n] for n in names])  # (members, repeats, rows)
    best, nested = choose_method("auto", stack, y, folds, fit_rows)
    for method, score in nested.items():
        mark = " <- nested choice" if method == best else ""
        print(
            f"  {method:<9}{score.mean:.5f} +- {score.std:.5f}  excl {score_rows(score.oof, y, folds, typical):.5f}"
            f"{mark}"
        )
    w = greedy_weights(stack[:, 0, fit_rows].T, y[fit_rows])
    print("  greedy weights (all fit rows):", {n: round(float(v), 3) for n, v in zip(names, w, strict=True) if v > 0})


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="candidates to fit (default: all)")
    parser.add_argument("--members", nargs="*", help="ensemble these cached candidates")
    parser.add_argument("--only", action="store_true", help="fit, do not score ensembles")
    parser.add_argument("--cached", action="store_true", help="use the newest cached OOF, fit nothing")
    parser.add_argument("--repeats", type=int, default=1, help="repeats of 5-fold CV (the pipeline: 3)")
    args = parser.parse_args()
    limit_threads(1)
    base = load_params()
    X, y_series, _ = load_prepared()
    y = y_series.to_numpy()
    folds = make_folds(len(y), 5, args.repeats, base.seed)
    typical = outlier_mask(X, y, base.features.outliers.model_copy(update={"enabled": True}))
    fit_rows = outlier_mask(X, y, base.features.outliers)
    names = args.names or list(CANDIDATES)
    oofs, seconds = {}, {}
    for name in names:
        oofs[name], seconds[name] = (
            cached(name, args.repeats) if args.cached else oof_for(base, name, X, y_series, args.repeats)
        )
        print(
            f"{name}: {score_rows(oofs[name], y, folds, np.ones(len(y), bool)):.5f} ({seconds[name]:.1f}s per fit)",
            flush=True,
        )
    report_members(names, oofs, seconds, y, folds, typical)
    if args.only:
        return
    print("ensembles over", names)
    report_ensembles(names, oofs, y, folds, typical, fit_rows)
    if args.members:
        print("ensembles over", args.members)
        report_ensembles(args.members, oofs, y, folds, typical, fit_rows)


if __name__ == "__main__":
    main()
