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
