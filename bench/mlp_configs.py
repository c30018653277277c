"""Cross-validated log-RMSE of MLP configurations next to a Lasso, on the same folds.

Each configuration is added to params.yaml's ``models`` under its own name (features,
``cv`` and ``seed`` as committed) and runs houseprices.evaluation.cross_validation.cross_validate.

    .venv/bin/python bench/mlp_configs.py                    # every configuration below
    .venv/bin/python bench/mlp_configs.py lasso wide_dropout # just these
    .venv/bin/python bench/mlp_configs.py --list
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
import yaml

from houseprices.config.params import parse_params
from houseprices.data.validation import read_csv, split_target
from houseprices.evaluation.cross_validation import cross_validate

ROOT = Path(__file__).resolve().parents[1]

# A plain starting point (ReLU, MSE, constant rate, AdamW wd 10), spelled out because the
# code defaults are the committed models.mlp; every other MLP row changes only what it names.
BASE = {
    "kind": "mlp",
    "hidden": [128],
    "activation": "relu",
    "optimizer": "adamw",
    "lr": 1e-3,
    "weight_decay": 10.0,
    "lr_schedule": "none",
    "loss": "mse",
    "epochs": 100,
    "batch_size": 64,
}

CONFIGS: dict[str, dict] = {
    "lasso": {"kind": "lasso", "alpha": 0.0005},
    "baseline": {},
    "deep_256_128": {"hidden": [256, 128]},
    "batch_norm": {"batch_norm": True},
    "dropout_0.3": {"hidden": [256], "dropout": 0.3},
    "adamw_wd_1": {"weight_decay": 1.0},
    "adamw_wd_30": {"weight_decay": 30.0},
    "sgd_nesterov": {"optimizer": "nesterov", "lr": 0.01, "momentum": 0.9, "weight_decay": 1e-3},
    "cosine": {"lr_schedule": "cosine", "lr": 3e-3},
    "huber": {"loss": "huber", "huber_delta": 1.0},
    "binned": {"head": "binned", "n_bins": 32},
    "early_stopping": {"epochs": 300, "valid_fraction": 0.15, "early_stopping": {"enabled": True, "patience": 20}},
    "elastic_l1": {"l1": 1e-4},
    "input_dropout": {"input_dropout": 0.2},
    "tanh": {"activation": "tanh"},
    "tanh_wd7": {"activation": "tanh", "weight_decay": 7.0},
    # The committed models.mlp default.
    "tanh_wd7_huber_cosine": {"activation": "tanh", "weight_decay": 7.0, "loss": "huber", "lr_schedule": "cosine"},
}


def load_xy():
    return split_target(read_csv(ROOT / "data" / "raw" / "train.csv", is_train=True))


def model_config(name: str, extra: dict | None = None) -> dict:
    cfg = CONFIGS[name] if extra is None else extra
    return cfg if cfg.get("kind") not in (None, "mlp") else {**BASE, **cfg}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("names", nargs="*", help="configurations to run (default: all)")
    parser.add_argument(
        "--set",
        metavar="NAME=JSON",
        action="append",
        default=[],
        help="an extra MLP config: overrides of BASE (repeatable)",
    )
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--out", type=Path, help="append one JSON line per result here")
    args = parser.parse_args()
    if args.list:
        for name in CONFIGS:
            print(f"{name:16s} {json.dumps(model_config(name))}")
        return
    torch.set_num_threads(1)

    raw = yaml.safe_load((ROOT / "params.yaml").read_text())
    X, y = load_xy()
    runs = [(n, model_config(n)) for n in (args.names or ([] if args.set else list(CONFIGS)))]
    for item in args.set:
        name, _, overrides = item.partition("=")
        runs.append((name, {**BASE, **json.loads(overrides)}))
    print(f"{'config':16s} {'cv mean':>8s} {'cv std':>7s} {'seconds':>7s}  settings")
    for name, cfg in runs:
        params = parse_params({**raw, "models": {**raw["models"], name: cfg}})
        start = time.perf_counter()
        result = cross_validate(name, params, X, y)
        seconds = time.perf_counter() - start
        settings = {k: v for k, v in cfg.items() if BASE.get(k) != v or k in ("hidden", "kind")}
        print(f"{name:16s} {result.mean:8.4f} {result.std:7.4f} {seconds:7.1f}  {json.dumps(settings)}", flush=True)
        if args.out:
            with args.out.open("a") as fh:
                fh.write(
                    json.dumps(
                        {
                            "name": name,
                            "config": cfg,
                            "mean": result.mean,
                            "std": result.std,
                            "folds": result.fold_scores,
                            "seconds": seconds,
                        }
                    )
                    + "\n"
                )


if __name__ == "__main__":
    main()
