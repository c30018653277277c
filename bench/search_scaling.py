"""What pruning and a second worker buy a search, measured side by side in one run.

(a) ``houseprices search --model mlp`` with pruning (search.yaml's pruner, or each
    ``--pruner`` given) vs without (same space, sampler and seed): trials per hour (from the
    study's first trial start to its last trial end) and the best CV log-RMSE each found.
    Target: pruning >= 2x trials per hour.
(b) A PostgreSQL study finishing a fixed number of lasso trials (no pruning, so every trial
    is the same work): one worker running all of them vs two workers running half each at
    the same time. Wall time from launch to the last worker's exit, and the ratio.
    Target: two workers <= 0.65x one worker's time.

Every arm runs the real command (a fresh process, its own storage and MLflow store).

    .venv/bin/python bench/search_scaling.py                  # (a) and (b): about an hour on 2 cores
    .venv/bin/python bench/search_scaling.py --skip workers   # (a): params.yaml's cv, 60 trials of 20 epochs
    .venv/bin/python bench/search_scaling.py --mlp-trials 30 --mlp-epochs 100

60 trials, not fewer: the pruner's first trials always run every fold, and a search is
meant to run many trials (a quarter of 20 trials is start-up). 48 lasso trials: a worker's
start-up (imports, data, the study) is paid once per worker, so few trials would measure it.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import get_args

import optuna
import yaml
from mlflow.tracking import MlflowClient

from houseprices.config.search import PrunerConfig

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "tests"))
from postgres import PostgresServer, unavailable  # noqa: E402


def write_files(work: Path, args, model: str, pruner: str, trials: int) -> tuple[Path, Path]:
    params = yaml.safe_load((ROOT / "params.yaml").read_text())
    params["cv"] = {"folds": args.folds, "repeats": args.repeats}
    params["models"]["mlp"]["epochs"] = args.mlp_epochs
    search = yaml.safe_load((ROOT / "search.yaml").read_text())
    pruning = {**search["models"][model].get("pruner", {}), "kind": pruner, "startup_trials": args.startup_trials}
    for key in ("percentile", "reduction_factor"):
        if getattr(args, key) is not None:
            pruning[key] = getattr(args, key)
    cfg = {**search["models"][model], "trials": trials, "sampler": args.sampler, "timeout": None, "pruner": pruning}
    params_file, search_file = work / "params.yaml", work / "search.yaml"
    params_file.write_text(yaml.safe_dump(params, sort_keys=False))
    search_file.write_text(yaml.safe_dump({"models": {model: cfg}}, sort_keys=False))
    return params_file, search_file


def launch(
    work: Path, params_file: Path, search_file: Path, model: str, storage: str, trials: int, worker: int = 0
) -> subprocess.Popen:
    uri = f"sqlite:///{work / 'mlflow.db'}"
    env = {**os.environ, "MLFLOW_TRACKING_URI": uri}
    cmd = [
        sys.executable,
        "-m",
        "houseprices.cli",
        "search",
        "--model",
        model,
        "--params",
        str(params_file),
        "--search-file",
        str(search_file),
        "--storage",
        storage,
        "--trials",
        str(trials),
        "--worker",
        str(worker),
    ]
    return subprocess.Popen(cmd, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def wait_all(procs: list[subprocess.Popen]) -> None:
    for proc in procs:
        out, _ = proc.communicate()
        if proc.returncode != 0:
            sys.exit(f"search failed:\n{out}")


def prepare_tracking(work: Path) -> None:
    """The MLflow experiment exists before concurrent workers start (no creation race)."""
    MlflowClient(f"sqlite:///{work / 'mlflow.db'}").create_experiment(
        "houseprices", artifact_location=(work / "mlruns").as_uri()
    )


def study_of(storage: str) -> optuna.Study:
    (summary,) = optuna.get_all_study_summaries(storage)
    return optuna.load_study(study_name=summary.study_name, storage=storage)


def pruning_arm(args, base: Path, pruner: str) -> dict:
    work = base / f"mlp-{pruner}"
    work.mkdir()
    prepare_tracking(work)
    params_file, search_file = write_files(work, args, "mlp", pruner, args.mlp_trials)
    storage = f"sqlite:///{work / 'optuna.db'}"
    wait_all([launch(work, params_file, search_file, "mlp", storage, args.mlp_trials)])
    trials = [t for t in study_of(storage).trials if t.datetime_complete]
    span = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    states = [t.state.name.lower() for t in trials]
    return {
        "pruner": pruner,
        "trials": len(trials),
        "pruned": states.count("pruned"),
        "seconds": span,
        "per_hour": len(trials) / span * 3600,
        "best": study_of(storage).best_value,
        "folds": sum(len(t.intermediate_values) for t in trials),
        "load": os.getloadavg()[1],
    }


def workers_arm(args, base: Path, server: PostgresServer, workers: int) -> dict:
    work = base / f"lasso-{workers}"
    work.mkdir()
    prepare_tracking(work)
    each = args.lasso_trials // workers
    params_file, search_file = write_files(work, args, "lasso", "none", each)
    storage = server.new_database()
    start = time.perf_counter()
    wait_all([launch(work, params_file, search_file, "lasso", storage, each, worker=w) for w in range(workers)])
    wall = time.perf_counter() - start
    trials = study_of(storage).trials
    span = (max(t.datetime_complete for t in trials) - min(t.datetime_start for t in trials)).total_seconds()
    return {"workers": workers, "trials": len(trials), "wall": wall, "span": span}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--mlp-trials", type=int, default=60)
    parser.add_argument("--mlp-epochs", type=int, default=20)
    kinds = [k for k in get_args(PrunerConfig.model_fields["kind"].annotation) if k != "none"]
    parser.add_argument(
        "--pruner",
        choices=kinds,
        action="append",
        help="pruned arm(s), each against the same search without pruning (default: search.yaml's)",
    )
    parser.add_argument(
        "--startup-trials", type=int, default=None, help="median pruner's full trials first (default: search.yaml's)"
    )
    parser.add_argument(
        "--percentile", type=float, default=None, help="percentile pruner's cut (default: search.yaml's, else 50)"
    )
    parser.add_argument(
        "--reduction-factor",
        type=int,
        default=None,
        help="hyperband's and successive_halving's 1 in this many going on at each rung "
        "(default: search.yaml's, else 3)",
    )
    parser.add_argument("--lasso-trials", type=int, default=48, help="total, split over the workers")
    parser.add_argument("--folds", type=int, default=None, help="default: params.yaml's cv.folds")
    parser.add_argument(
        "--repeats", type=int, default=None, help="default: params.yaml's cv.repeats (what a search runs)"
    )
    parser.add_argument("--sampler", choices=["tpe", "random"], default="tpe")
    parser.add_argument("--skip", choices=["pruning", "workers"], action="append", default=[])
    args = parser.parse_args()
    cv = yaml.safe_load((ROOT / "params.yaml").read_text())["cv"]
    args.folds = cv["folds"] if args.folds is None else args.folds
    args.repeats = cv["repeats"] if args.repeats is None else args.repeats
    pruner = yaml.safe_load((ROOT / "search.yaml").read_text())["models"]["mlp"]["pruner"]
    args.pruner = args.pruner or [pruner["kind"]]
    if args.startup_trials is None:
        args.startup_trials = pruner.get("startup_trials", PrunerConfig().startup_trials)
    if not (ROOT / "data/prepared/X_train.parquet").is_file():
        subprocess.run([sys.executable, "-m", "houseprices.cli", "prepare"], cwd=ROOT, check=True)
    with tempfile.TemporaryDirectory(prefix="search-bench-") as tmp:
        base = Path(tmp)
        print(
            f"cv {args.folds}x{args.repeats}, sampler {args.sampler}, {os.cpu_count()} cores, "
            f"load {os.getloadavg()[0]:.1f}"
        )
        if "pruning" not in args.skip:
            print(
                f"(a) mlp, {args.mlp_trials} trials, {args.mlp_epochs} epochs, pruner {' / '.join(args.pruner)} "
                f"(median/percentile after {args.startup_trials} startup trials; percentile "
                f"{args.percentile or 'of search.yaml'}; reduction factor "
                f"{args.reduction_factor or 'of search.yaml'}) vs none"
            )
            arms = [pruning_arm(args, base, kind) for kind in args.pruner] + [pruning_arm(args, base, "none")]
            for a in arms:
                print(
                    f"  pruner {a['pruner']:18s}: {a['trials']} trials ({a['pruned']} pruned, "
                    f"{a['folds']} folds fit) "
                    f"in {a['seconds']:.0f} s = {a['per_hour']:.0f} trials/hour, best CV {a['best']:.5f}; "
                    f"{a['seconds'] / a['folds']:.2f} s per fold, load {a['load']:.1f} (5-min mean at its end)"
                )
            none = arms[-1]
            for a in arms[:-1]:
                print(
                    f"  trials per hour, {a['pruner']} / none: {a['per_hour'] / none['per_hour']:.2f}x (target >= 2); "
                    f"folds fit per trial, none / {a['pruner']}: {none['folds'] / a['folds']:.2f}x"
                )
        if "workers" not in args.skip:
            if unavailable():
                sys.exit(f"(b) needs a PostgreSQL server: {unavailable()}")
            server = PostgresServer().start()
            try:
                print(f"(b) lasso, {args.lasso_trials} trials on PostgreSQL, 1 worker vs 2 workers")
                one, two = workers_arm(args, base, server, 1), workers_arm(args, base, server, 2)
            finally:
                server.stop()
            for a in (one, two):
                print(
                    f"  {a['workers']} worker(s): {a['trials']} trials, wall {a['wall']:.1f} s "
                    f"(first trial start to last end {a['span']:.1f} s)"
                )
            print(
                f"  wall time, 2 workers / 1 worker: {two['wall'] / one['wall']:.2f} (target <= 0.65); "
                f"trial span ratio {two['span'] / one['span']:.2f}; load {os.getloadavg()[0]:.1f}"
            )


if __name__ == "__main__":
    main()
