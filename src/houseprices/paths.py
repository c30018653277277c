"""File and folder names that stages, config and tracking share, relative to the repo root, and
that root, also from a DVC experiment's copy of the repository."""

import os
from pathlib import Path

PARAMS_FILE = "params.yaml"
SEARCH_FILE = "search.yaml"
CHECKSUMS = Path("data/raw/SHA256SUMS")
PREPARED = Path("data/prepared")
MODELS = Path("models")
MEMBERS = MODELS / "members"
METRICS = Path("metrics")
PLOTS = Path("plots")
SEARCH = Path("search")  # the default Optuna storage's folder
INTERVALS_FILE = Path("predictions_with_intervals.csv")
FOLD_CACHE = Path(".cache/fold_features")  # evaluation/feature_cache.py; not an output


def remade_by(path: Path | str) -> str:
    """The command that writes ``path`` again, for a message about a damaged file."""
    parts = Path(path).parts
    if parts[:2] == MEMBERS.parts and len(parts) > 2:
        return f"dvc repro train@{parts[2]}"
    if parts[:2] == (MODELS / "ensemble").parts:
        return "dvc repro ensemble"
    if parts[:2] == PREPARED.parts:
        return "dvc repro prepare"
    if parts[:1] == METRICS.parts and len(parts) == 2:
        stem = Path(parts[1]).stem
        named = {"features": "dvc repro featurize", "ensemble": "dvc repro ensemble"}
        return named.get(stem, f"dvc repro train@{stem}")
    return "dvc repro"


EXPERIMENT_COPY = (".dvc", "tmp", "exps")


def _copy_index(parts: tuple[str, ...]) -> int | None:
    """Index of ``.dvc/tmp/exps`` in a path, or None."""
    return next((i for i in range(len(parts) - 2) if parts[i : i + 3] == EXPERIMENT_COPY), None)


def repo_root(start: Path | None = None) -> Path:
    """The main repository root, also when DVC runs us in a queued experiment's copy under
    ``<repo>/.dvc/tmp/exps`` (it sets DVC_ROOT to the copy): its runs belong in the main store."""
    if os.environ.get("HOUSEPRICES_REPO_ROOT"):
        return Path(os.environ["HOUSEPRICES_REPO_ROOT"]).resolve()
    if os.environ.get("DVC_ROOT"):
        root = Path(os.environ["DVC_ROOT"]).resolve()
    else:
        here = (start or Path.cwd()).resolve()
        root = next((p for p in (here, *here.parents) if (p / "dvc.yaml").is_file()), here)
    index = _copy_index(root.parts)
    return Path(*root.parts[:index]) if index is not None else root


def in_workspace(cwd: Path | None = None) -> bool:
    """True when the stage writes the repository's own outputs (``dvc repro`` or a
    ``dvc exp run`` in the workspace), False inside a queued or ``--temp`` experiment's
    copy under ``.dvc/tmp/exps``, whose outputs reach the workspace only if applied."""
    paths = [(cwd or Path.cwd()).resolve()]
    if os.environ.get("DVC_ROOT"):
        paths.append(Path(os.environ["DVC_ROOT"]).resolve())
    return all(_copy_index(p.parts) is None for p in paths)
