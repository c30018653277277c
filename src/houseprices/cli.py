"""``houseprices <stage>``: one subcommand per DVC stage, plus download/submit/search/runs.

Expected failures (bad params, bad data, unreachable tracking, a diverging fit) print
one clear message and exit 2; nothing else is written.
"""

from __future__ import annotations

import argparse
import gc
import importlib
import logging
import sys
import warnings
from pathlib import Path

from houseprices.config.params import load_params
from houseprices.data.download import D2L_BASE_URL, MAX_BYTES
from houseprices.errors import HousePricesError
from houseprices.paths import CHECKSUMS, PARAMS_FILE
from houseprices.runner import run_command

logger = logging.getLogger("houseprices")


def _stage(args, name: str):
    """The stage's module ``houseprices.stages.<name>``, imported alone: a command pays only for
    its own imports. In the ``houseprices`` process itself the modules stay until it exits, so the
    cyclic garbage collector is off while they load and they leave its sight after (``gc.freeze``):
    its collections would walk every imported object again and again. Not when ``main`` runs
    inside another program (the tests)."""
    if args.own_process:
        gc.disable()
    try:
        return importlib.import_module(f"houseprices.stages.{name}")
    finally:
        if args.own_process:
            gc.freeze()
            gc.enable()


def _params(args):
    """The params the runner read for this command (read once), else read now."""
    loaded = getattr(args, "loaded_params", None)
    return loaded if loaded is not None else load_params(args.params)


def cmd_prepare(args) -> None:
    _stage(args, "prepare").run(_params(args))


def cmd_featurize(args) -> None:
    _stage(args, "featurize").run(_params(args))


def cmd_train(args) -> None:
    from houseprices.evaluation.fold_workers import planned_workers

    planned_workers(_params(args).resources)  # the fold workers' imports overlap the stage's own
    _stage(args, "train").run(_params(args), args.model, Path(args.params))


def cmd_ensemble(args) -> None:
    _stage(args, "ensemble").run(_params(args), Path(args.params))


def cmd_submission(args) -> None:
    _stage(args, "submission").run(_params(args))


def cmd_submit(args) -> None:
    from houseprices.submission import upload

    params = _params(args)
    message = args.message or _default_message(params)
    print(upload(params.submission.path, message))
    name = params.tracking.registered_model
    if name:  # registry alias @submitted
        from houseprices.tracking.registry import mark_submitted
        from houseprices.tracking.tracker import connect

        try:
            mark_submitted(connect(params)[0], name, params.submission.path, message)
        except Exception as err:  # noqa: BLE001 - the upload is done; the registry is bookkeeping
            warnings.warn(f"could not mark the submission in the registry: {err}", stacklevel=1)


def _default_message(params) -> str:
    import json
    import subprocess

    commit = subprocess.run(["git", "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()
    score = ""
    metrics = Path("metrics/ensemble.json")
    if metrics.is_file():
        score = f" CV log-RMSE {json.loads(metrics.read_text())['cv_log_rmse_mean']:.5f}"
    return f"{params.submission.message} {commit or 'uncommitted'}{score}"


def cmd_download(args) -> None:
    from houseprices.data.download import download

    options = {"source": args.source, "base_url": args.base_url, "max_bytes": args.max_bytes}
    for path in download(Path(args.dest), checksums=Path(args.checksums), **options):
        print(path)


def cmd_search(args) -> None:
    options = {key: getattr(args, key) for key in ("trials", "timeout", "storage", "threads", "worker", "apply")}
    _stage(args, "search").run(_params(args), args.model, Path(args.params), Path(args.search_file), **options)


def cmd_champion(args) -> None:
    from houseprices.tracking.registry import describe, promote
    from houseprices.tracking.tracker import connect

    params = _params(args)
    name = params.tracking.registered_model
    if not name:
        raise HousePricesError("tracking.registered_model is empty: no registry to hold @champion")
    client, _ = connect(params)
    if args.version:
        promote(client, name, args.version)
    print(describe(client, name))


def cmd_runs(args) -> None:
    from houseprices.reporting.runs import print_runs

    print_runs(_params(args), args.last)


def cmd_leaderboard(args) -> None:
    from houseprices.reporting.leaderboard import print_leaderboard

    print_leaderboard(_params(args), Path(args.out))


# One line per command; what each DVC stage reads and writes is declared in dvc.yaml.
COMMANDS = {
    "prepare": (cmd_prepare, "verify checksums and validate the raw CSVs"),
    "featurize": (cmd_featurize, "fit the preprocessing on training rows and report it"),
    "train": (cmd_train, "cross-validate one named model, refit it, predict the test rows"),
    "ensemble": (cmd_ensemble, "weight the members on out-of-fold predictions, add intervals"),
    "submission": (cmd_submission, "write and validate submission.csv"),
    "submit": (cmd_submit, "upload submission.csv to Kaggle (needs Kaggle credentials)"),
    "download": (cmd_download, "fetch the competition CSVs (Kaggle CLI, else the d2l.ai mirror)"),
    "search": (cmd_search, "Optuna hyperparameter search for one model (run more workers to go faster)"),
    "champion": (cmd_champion, "show @champion and its contenders; --version N moves it by hand"),
    "runs": (cmd_runs, "list the last pipeline runs from MLflow"),
    "leaderboard": (cmd_leaderboard, "members and ensemble, best first: CV scores, fit and predict times"),
}


def _search_options(p: argparse.ArgumentParser) -> None:
    p.add_argument("--search-file", default="search.yaml", help="search settings (default: %(default)s)")
    p.add_argument(
        "--trials",
        type=int,
        default=None,
        help="trials this worker adds (default: search.yaml's trials; 0 with --apply: apply only)",
    )
    p.add_argument("--timeout", type=float, default=None, help="stop starting trials after S seconds")
    p.add_argument("--storage", default=None, help="SQLAlchemy URL of the Optuna storage shared by workers")
    p.add_argument("--threads", type=int, default=1, help="threads per trial (default: %(default)s; 0: all cores)")
    p.add_argument(
        "--worker",
        type=int,
        default=0,
        help="distinct id per concurrent worker, so their samplers draw different points",
    )
    p.add_argument("--apply", action="store_true", help="write the study's best params into params.yaml")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="houseprices",
        description="Kaggle House Prices pipeline: its stages (dvc.yaml; run them all with `dvc repro`) "
        "and the commands around them.",
    )
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, (func, summary) in COMMANDS.items():
        p = sub.add_parser(name, help=summary, description=f"{summary[0].upper()}{summary[1:]}.")
        p.set_defaults(func=func)
        if name != "download":
            p.add_argument("--params", default=PARAMS_FILE, help="params file (default: %(default)s)")
        if name in ("train", "search"):
            p.add_argument("--model", required=True, help="a model name under `models:` in params.yaml")
        if name == "search":
            _search_options(p)
        if name == "submit":
            p.add_argument("-m", "--message", default="", help="submission message (default: commit and CV score)")
        if name == "leaderboard":
            p.add_argument("--out", default="metrics/leaderboard.md", help="table file (default: %(default)s)")
        if name == "champion":
            p.add_argument("--version", default="", help="the registered version to make @champion")
        if name == "runs":
            p.add_argument("-n", "--last", type=int, default=10, help="how many pipeline runs (default: 10)")
        if name == "download":
            p.add_argument("--dest", default="data/raw", help="target folder (default: %(default)s)")
            p.add_argument(
                "--source",
                choices=["auto", "kaggle", "mirror"],
                default="auto",
                help="auto: Kaggle CLI when credentials exist, else the d2l.ai mirror",
            )
            p.add_argument("--base-url", default=D2L_BASE_URL, help="mirror URL (default: %(default)s)")
            p.add_argument(
                "--checksums",
                default=str(CHECKSUMS),
                help="SHA-256 list every file is verified against (default: %(default)s)",
            )
            p.add_argument("--max-bytes", type=int, default=MAX_BYTES, help="size cap per file (default: %(default)s)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """The CLI; ``argv`` None: this is the ``houseprices`` process, which ends when it returns."""
    args = build_parser().parse_args(argv)
    args.own_process = argv is None
    logging.basicConfig(
        level=logging.DEBUG if args.verbose else logging.INFO,
        format="%(asctime)s %(levelname)s %(name)s: %(message)s",
        stream=sys.stderr,
    )
    logging.getLogger("alembic").setLevel(logging.WARNING)
    warnings.simplefilter("default", UserWarning)
    try:
        run_command(args)  # bounded threads and HTTP, runs KILLED on signals, store errors as one line
    except (HousePricesError, FileNotFoundError) as err:
        print(f"houseprices {args.command}: error: {err}", file=sys.stderr)
        return 2
    finally:
        if args.own_process:
            gc.freeze()  # the process ends now: no last collection over everything it holds
    return 0


if __name__ == "__main__":
    sys.exit(main())
