"""``houseprices runs``: the last pipeline executions as a table, read back from MLflow; and the
members' times for the leaderboard."""

from __future__ import annotations

import datetime as dt
import warnings

from mlflow.entities import Run
from mlflow.tracking import MlflowClient

from houseprices.config.params import Params
from houseprices.errors import TrackingError
from houseprices.paths import repo_root
from houseprices.tracking.store import check_reachable, tracking_uri
from houseprices.tracking.tags import KIND_TAG

FIXED = ["time", "status", "commit", "experiment", "run_id"]
SCORE = "cv_log_rmse"  # the ensemble's own score on a pipeline run; "<member>.cv_log_rmse" a member's


def run_row(run: Run) -> dict:
    """One pipeline run: when, which, how it ended, what code, and its CV scores."""
    tags, metrics = run.data.tags, run.data.metrics
    started = dt.datetime.fromtimestamp(run.info.start_time / 1000, dt.UTC)
    row = {
        "time": started.strftime("%Y-%m-%d %H:%M"),
        "status": run.info.status,
        "commit": tags.get("git.commit", "")[:7] + ("+" if tags.get("git.dirty") == "true" else ""),
        "experiment": tags.get("dvc.experiment") or "-",
        "run_id": run.info.run_id[:8],
    }
    if SCORE in metrics:
        row["ensemble"] = metrics[SCORE]
    row.update({k.removesuffix(f".{SCORE}"): v for k, v in metrics.items() if k.endswith(f".{SCORE}")})
    return row


def newest_runs(uri: str, experiment: str, query: str, last: int) -> list[Run]:
    """The ``last`` newest runs of ``experiment`` that match ``query`` (none without the experiment)."""
    client = MlflowClient(uri)
    exp = client.get_experiment_by_name(experiment)
    if exp is None:
        return []
    return client.search_runs([exp.experiment_id], query, order_by=["attributes.start_time DESC"], max_results=last)


def pipeline_runs(uri: str, experiment: str, last: int) -> list[dict]:
    return [run_row(run) for run in newest_runs(uri, experiment, f"tags.`{KIND_TAG}` = 'pipeline'", last)]


def format_table(rows: list[dict]) -> str:
    """Aligned columns; scores to 4 decimals, "-" where a run has none (failed, cached stage)."""
    if not rows:
        return "no pipeline runs yet: run `dvc repro`"
    models = sorted({k for r in rows for k in r if k not in FIXED}, key=lambda k: (k != "ensemble", k))
    header = FIXED + models
    cells = [[str(r.get(k, "")) if k in FIXED else (f"{r[k]:.4f}" if k in r else "-") for k in header] for r in rows]
    widths = [max(len(h), *(len(c[i]) for c in cells)) for i, h in enumerate(header)]
    lines = ["  ".join(c.ljust(w) for c, w in zip(row, widths, strict=True)).rstrip() for row in [header, *cells]]
    return "\n".join(lines)


def print_runs(params: Params, last: int = 10) -> None:
    uri = tracking_uri(params.tracking.uri, repo_root())
    check_reachable(uri)
    try:
        rows = pipeline_runs(uri, params.tracking.experiment, last)
    except Exception as err:
        raise TrackingError(f"MLflow store {uri}: {err}") from err
    print(format_table(rows))


def member_times(params: Params, members: list[str]) -> dict[str, dict]:
    """Each member's times (``fit_seconds``, ``predict_seconds``, ``cv_seconds``...) from its last
    finished ``train <member>`` run; none, with a warning, when the store cannot be read."""
    uri = tracking_uri(params.tracking.uri, repo_root())
    try:
        check_reachable(uri)
        found = {}
        for name in members:
            query = f"attributes.run_name = 'train {name}' and attributes.status = 'FINISHED'"
            for run in newest_runs(uri, params.tracking.experiment, query, 1):
                found[name] = run.data.metrics
        return found
    except Exception as err:  # noqa: BLE001 - the times are extra: the scores come from the files
        warnings.warn(f"MLflow store {uri}: {err}; the leaderboard goes without times", stacklevel=2)
        return {}
