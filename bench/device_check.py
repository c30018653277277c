"""Device check: the default MLP's 5-fold CV on CUDA and on the CPU, same code, same folds.

Run where a GPU exists: `python bench/device_check.py`. Prints device, score and time per
device and the largest prediction difference; exits non-zero if CUDA was asked for and
not used, or predictions are not finite.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "src"))

from houseprices.config.params import load_params, with_model_overrides  # noqa: E402
from houseprices.data.validation import read_csv, split_target  # noqa: E402
from houseprices.evaluation.cross_validation import cross_validate  # noqa: E402
from houseprices.models.registry import build_estimator  # noqa: E402


def main() -> int:
    params = load_params(ROOT / "params.yaml")
    X, y = split_target(read_csv(ROOT / "data/raw/train.csv", is_train=True))
    print(
        f"torch {torch.__version__}, cuda available: {torch.cuda.is_available()}",
        f"({torch.cuda.get_device_name(0)})" if torch.cuda.is_available() else "",
    )
    oofs = {}
    for device in ("cuda", "auto", "cpu"):
        if device != "cpu" and not torch.cuda.is_available():
            continue
        p = with_model_overrides(params, "mlp", {"device": device}, "device_check")
        est = build_estimator(p.model("mlp"), p.features, p.seed).fit(X.head(200), y.head(200))
        net = est[-1]
        where = {str(t.device) for t in net.module_.parameters()}
        dtypes = {str(t.dtype) for t in net.module_.parameters()}
        start = time.perf_counter()
        result = cross_validate("mlp", p, X, y)
        seconds = time.perf_counter() - start
        oofs[device] = result.oof[0]
        print(
            f"device={device:5s} params on {sorted(where)} {sorted(dtypes)}: CV log-RMSE "
            f"{result.mean:.5f} ± {result.std:.5f} in {seconds:.1f}s"
        )
        if not np.isfinite(result.oof).all():
            print("non-finite predictions")
            return 1
        if device in ("cuda", "auto") and where != {"cuda:0"}:
            print(f"device={device} did not train on the GPU")
            return 1
    if "cuda" in oofs:
        print(f"max |OOF cuda - cpu| = {np.max(np.abs(oofs['cuda'] - oofs['cpu'])):.2e} (log price)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
