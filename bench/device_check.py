"""Device check: the default MLP's CV on CUDA, with ``device: auto`` and on the CPU, same
code, same folds; ``--steps``: one training step's time on one CPU thread and on CUDA over
batch sizes and layer widths (plain torch, the default net's shape), which sets
``AUTO_CUDA_MIN_BATCH_WIDTH`` in ``models/mlp/factory.py``.

Run where a GPU exists: `python bench/device_check.py [--steps]`. Prints device, score and
time per device and the largest prediction difference; exits non-zero if CUDA was asked
for and not used, or predictions are not finite.
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


def step_seconds(device: str, batch: int, width: int, n_inputs: int = 283) -> float:
    """Seconds per AdamW step of Linear-tanh-Linear on rows already on ``device``, the loss
    read back each step as skorch records it."""
    torch.manual_seed(0)
    net = torch.nn.Sequential(torch.nn.Linear(n_inputs, width), torch.nn.Tanh(), torch.nn.Linear(width, 1)).to(device)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=2.0)
    X, y, loss = (
        torch.randn(batch * 4, n_inputs, device=device),
        torch.randn(batch * 4, 1, device=device),
        torch.nn.HuberLoss(),
    )

    def step(i: int) -> float:
        rows = slice((i % 4) * batch, (i % 4 + 1) * batch)
        opt.zero_grad()
        value = loss(net(X[rows]), y[rows])
        value.backward()
        opt.step()
        return value.item()

    for i in range(5):
        step(i)
    n, start = 0, time.perf_counter()
    while n < 5 or (time.perf_counter() - start < 1.0 and n < 400):
        step(n)
        n += 1
    return (time.perf_counter() - start) / n


def steps() -> int:
    torch.set_num_threads(1)  # resources.threads' default
    print("batch width  cpu(1 thread) ms  cuda ms  faster")
    for batch in (64, 256, 1024, 4096, 16384):
        for width in (128, 512, 2048):
            cpu, cuda = step_seconds("cpu", batch, width), step_seconds("cuda", batch, width)
            print(
                f"{batch:5d} {width:5d} {cpu * 1e3:16.3f} {cuda * 1e3:8.3f}  {'cuda' if cuda < cpu else 'cpu'}",
                flush=True,
            )
    return 0


def main() -> int:
    if sys.argv[1:] == ["--steps"]:
        return steps()
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
