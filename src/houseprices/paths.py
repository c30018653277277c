"""File and folder names that stages, config and tracking share, relative to the repo root."""

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
