"""Cross-validated log-RMSE of the MLP for each preprocessing option, one change at a time.

Every row is the committed params.yaml (read at run time: ``models.mlp``, ``cv``, ``seed``,
``features``) with one ``features`` key overridden, scored by
houseprices.evaluation.cross_validation.cross_validate on the same seeded folds. Besides each row's CV mean
and std over folds, the table gives the paired difference to the baseline row, fold by
fold, and its standard error: the noise to beat before changing a default.

    .venv/bin/python bench/feature_options.py                 # every option below
    .venv/bin/python bench/feature_options.py baseline pca_0.99
    .venv/bin/python bench/feature_options.py --list
    .venv/bin/python bench/feature_options.py --set skew.method=yeo-johnson --set scaling=robust
    .venv/bin/python bench/feature_options.py --seed-noise 3 baseline   # + baseline, 3 other net seeds

``--seed-noise N`` reruns the baseline with N other seeds for the network (folds kept at
params.yaml's seed): the spread of those CV means is the noise an option has to beat.
"""

from __future__ import annotations

import argparse
import copy
import json
import logging
import time
from pathlib import Path

import numpy as np
import torch
import yaml

from houseprices.config.params import parse_params
from houseprices.data.validation import read_csv, split_target
from houseprices.evaluation import cross_validation as training
from houseprices.evaluation.cross_validation import cross_validate

ROOT = Path(__file__).resolve().parents[1]

# name -> {dotted key under features: value}; "baseline" changes nothing.
OPTIONS: dict[str, dict[str, object]] = {
    "baseline": {},
    "impute.numeric=mean": {"impute.numeric": "mean"},
    "impute.numeric=median": {"impute.numeric": "median"},
    "impute.numeric=most_frequent": {"impute.numeric": "most_frequent"},
    "impute.numeric=constant": {"impute.numeric": "constant"},
    "impute.categorical=most_frequent": {"impute.categorical": "most_frequent"},
    "na_means_none=off": {"impute.na_means_none": False},
    "missing_indicators=on": {"impute.missing_indicators": True},
    "lot_frontage_by_neighborhood=off": {"impute.lot_frontage_by_neighborhood": False},
    "scaling=standard": {"scaling": "standard"},
    "scaling=minmax": {"scaling": "minmax"},
    "scaling=robust": {"scaling": "robust"},
    "scaling=none": {"scaling": "none"},
    "skew=none": {"skew.method": "none"},
    "skew=log1p": {"skew.method": "log1p"},
    "skew=yeo-johnson": {"skew.method": "yeo-johnson"},
    "skew=box-cox": {"skew.method": "box-cox"},
    "ordinal_quality=on": {"encoding.ordinal_quality": True},
    "min_frequency=10": {"encoding.min_frequency": 10},
    "domain=all off": {
        f"domain.{k}": False for k in ("total_sf", "total_bathrooms", "ages", "porch_area", "has_flags")
    },
    "pca=0.99": {"pca.enabled": True, "pca.n_components": 0.99, "pca.whiten": False},
    "pca=0.99 whiten": {"pca.enabled": True, "pca.n_components": 0.99, "pca.whiten": True},
    "outliers=off": {"outliers.enabled": False},
}


def load_xy():
    return split_target(read_csv(ROOT / "data" / "raw" / "train.csv", is_train=True))


def with_features(raw: dict, changes: dict[str, object]) -> dict:
    raw = copy.deepcopy(raw)
    for dotted, value in changes.items():
        node = raw.setdefault("features", {})
        *path, last = dotted.split(".")
        for key in path:
            node = node.setdefault(key, {})
        node[last] = value
    return raw


def is_noop(raw: dict, changes: dict[str, object]) -> bool:
    """True when an option only restates the current default (it would repeat baseline)."""
    return parse_params(with_features(raw, changes)).features == parse_params(raw).features


def parse_set(items: list[str]) -> dict[str, object]:
    return {k: yaml.safe_load(v) for k, v in (item.split("=", 1) for item in items)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("options", nargs="*", help="option names (default: all)")
    parser.add_argument("--list", action="store_true", help="list the options and exit")
    parser.add_argument(
        "--set",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="one extra row changing these features keys together (repeatable)",
    )
    parser.add_argument("--params", default=str(ROOT / "params.yaml"))
    parser.add_argument(
        "--seed-noise",
        type=int,
        default=0,
        metavar="N",
        help="also run the baseline with N other network seeds, same folds",
    )
    parser.add_argument("--json", help="also write the rows here")
    args = parser.parse_args()
    if args.list:
        print("\n".join(OPTIONS))
        return

    torch.set_num_threads(1)  # shared CPUs; runs are sequential
    logging.basicConfig(level=logging.WARNING)
    raw = yaml.safe_load(Path(args.params).read_text())
    options = {name: OPTIONS[name] for name in (args.options or OPTIONS)}
    if args.set:
        options["combined: " + " ".join(args.set)] = parse_set(args.set)
    options = {"baseline": {}, **options}
    fold_seed = parse_params(raw).seed
    real_make_folds = training.make_folds
    # Same folds whatever params.seed says: seed-noise rows change only the network's seed.
    training.make_folds = lambda n, folds, repeats, seed: real_make_folds(n, folds, repeats, fold_seed)
    for k in range(1, args.seed_noise + 1):
        options[f"baseline, net seed {fold_seed + k}"] = {"__seed__": fold_seed + k}
    X, y = load_xy()
    base = parse_params(raw)
    print(f"models.mlp = {json.dumps(base.models['mlp'].model_dump(mode='json'), sort_keys=True)}")
    print(f"cv = {base.cv.folds} folds x {base.cv.repeats}, seed {base.seed}, {len(X)} rows\n")

    rows, baseline_scores = [], None
    header = f"{'option':<40} {'CV mean':>8} {'CV std':>7} {'diff':>8} {'+-SE':>7} {'sec':>5}"
    print(header, flush=True)
    for name, changes in options.items():
        changes = dict(changes)
        seed = changes.pop("__seed__", None)
        if name != "baseline" and seed is None and is_noop(raw, changes):
            print(f"{name:<40} {'= baseline (current default)':>38}", flush=True)
            rows.append({"option": name, "same_as": "baseline"})
            continue
        params = parse_params({**with_features(raw, changes), **({"seed": seed} if seed is not None else {})})
        start = time.perf_counter()
        result = cross_validate("mlp", params, X, y)
        seconds = time.perf_counter() - start
        scores = np.asarray(result.fold_scores)
        if baseline_scores is None:
            baseline_scores = scores
        diff = scores - baseline_scores
        se = diff.std(ddof=1) / np.sqrt(len(diff)) if len(diff) > 1 else float("nan")
        rows.append(
            {
                "option": name,
                "cv_mean": result.mean,
                "cv_std": result.std,
                "diff": float(diff.mean()),
                "diff_se": float(se),
                "folds": scores.tolist(),
                "seconds": seconds,
            }
        )
        print(
            f"{name:<40} {result.mean:8.5f} {result.std:7.5f} {diff.mean():+8.5f} {se:7.5f} {seconds:5.0f}", flush=True
        )
    seeds = [r["cv_mean"] for r in rows if r["option"] == "baseline" or r["option"].startswith("baseline, net seed")]
    if len(seeds) > 1:
        print(f"\nbaseline over {len(seeds)} net seeds: {np.mean(seeds):.5f} +- {np.std(seeds, ddof=1):.5f} (std)")
    if args.json:
        Path(args.json).write_text(json.dumps(rows, indent=2) + "\n")


if __name__ == "__main__":
    main()
