"""``houseprices runs``: the last pipeline executions as a table, read back from MLflow."""

from __future__ import annotations

import datetime as dt

from mlflow.tracking import MlflowClient

from .config import Params
from .errors import TrackingError
from .tracking import KIND_TAG, check_reachable, repo_root, tracking_uri


def pipeline_runs(uri: str, experiment: str, last: int) -> list[dict]:
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    runs = client.search_runs([exp.experiment_id], f"tags.`{KIND_TAG}` = 'pipeline'",
                              order_by=["attributes.start_time DESC"], max_results=last)
    rows = []
    for run in runs:
        tags, metrics = run.data.tags, run.data.metrics
        rows.append({
            "time": dt.datetime.fromtimestamp(run.info.start_time / 1000, dt.timezone.utc).strftime("%Y-%m-%d %H:%M"),
            "commit": tags.get("git.commit", "")[:8] + ("+" if tags.get("git.dirty") == "true" else ""),
            "experiment": tags.get("dvc.experiment") or "-",
            "run_id": run.info.run_id[:8],
            # "<model>.cv_log_rmse" (older runs: "<model>.cv_log_rmse_mean")
            **{k.rsplit(".", 1)[0]: v for k, v in metrics.items()
               if k.endswith((".cv_log_rmse", ".cv_log_rmse_mean"))},
        })
    return rows


def format_table(rows: list[dict]) -> str:
    if not rows:
        return "no pipeline runs yet: run `dvc repro`"
    fixed = ["time", "commit", "experiment", "run_id"]
    models = sorted({k for r in rows for k in r if k not in fixed}, key=lambda k: (k != "ensemble", k))
    header = fixed + models
    cells = [[str(r.get(k, "")) if k in fixed else (f"{r[k]:.5f}" if k in r else "-") for k in header] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(h.ljust(w) for h, w in zip(header, widths))]
    lines += ["  ".join(c.ljust(w) for c, w in zip(row, widths)) for row in cells]
    return "\n".join(lines)


def print_runs(params: Params, last: int = 10) -> None:
    uri = tracking_uri(params.tracking.uri, repo_root())
    check_reachable(uri)
    try:
        rows = pipeline_runs(uri, params.tracking.experiment, last)
    except Exception as err:
        raise TrackingError(f"MLflow store {uri}: {err}") from err
    print(format_table(rows))
