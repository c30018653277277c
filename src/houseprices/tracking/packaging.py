"""The priced-house model as an MLflow model, logged "from code": the class lives in
``model_code.py``; the combination (weights, intercept) and each member's fitted pipeline
(the file its train stage wrote) travel as joblib artifacts, so nothing is cloudpickled,
the logging stage never unpickles a member, and the model loads wherever the package code
(logged beside it) imports."""

from __future__ import annotations

import contextlib
import os
import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import mlflow
import numpy as np
import pandas as pd

import houseprices
from houseprices.tracking.lineage import MODEL_PACKAGES, package_version
from houseprices.util.files import dump_model

MODEL_CODE = Path(__file__).with_name("model_code.py")
ARTIFACT = "price_model"
MEMBER_ARTIFACT = "member."  # + the member's name


class PricePyfunc(mlflow.pyfunc.PythonModel):
    """MLflow face of a :class:`~houseprices.evaluation.ensemble.PriceModel`: rows as in test.csv
    in, prices in dollars out."""

    def load_context(self, context) -> None:
        import joblib

        self.model = joblib.load(context.artifacts[ARTIFACT])
        for key, path in context.artifacts.items():
            if key.startswith(MEMBER_ARTIFACT):
                self.model.members[key.removeprefix(MEMBER_ARTIFACT)] = joblib.load(path)

    def predict(self, context, model_input: pd.DataFrame, params=None):
        frame = model_input if isinstance(model_input, pd.DataFrame) else pd.DataFrame(model_input)
        return self.model.predict(frame)


def pip_requirements() -> list[str]:
    """Pinned from the running interpreter: MLflow's own inference reloads the model in a
    subprocess, which costs more than the whole training stage."""
    return [f"{p}=={package_version(p)}" for p in MODEL_PACKAGES]


def price_signature(rows: pd.DataFrame):
    """Every column optional and nullable: numeric columns take ints or floats with NaN
    (``AnyType``: pandas reads a column with a gap as float, without one as int), text
    columns take strings or missing values."""
    from mlflow.models import ModelSignature
    from mlflow.types import ColSpec, Schema
    from mlflow.types.schema import AnyType

    numeric = set(rows.select_dtypes("number").columns)
    inputs = Schema([ColSpec(AnyType() if c in numeric else "string", c, required=False) for c in rows.columns])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double")]))


def input_example(rows: pd.DataFrame) -> pd.DataFrame:
    """Two real rows and one with every feature missing: the model must price all three."""
    example = rows.head(3).copy().reset_index(drop=True)
    features = [c for c in example.columns if c != "Id"]
    example.loc[2, features] = np.nan
    return example


@contextlib.contextmanager
def quiet_artifact_downloads():
    """MLflow reloads the artifacts it just logged to check the model, with a progress
    bar per call that floods ``dvc repro`` logs; the user's own setting wins."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    if key in os.environ:
        yield
        return
    os.environ[key] = "false"
    try:
        yield
    finally:
        os.environ.pop(key, None)


def log_price_model(
    model,
    rows: pd.DataFrame,
    registered_name: str | None = None,
    name: str = "model",
    member_files: Mapping[str, Path] | None = None,
):
    """Log (and optionally register) ``model`` on the active run, with the package code
    beside it, so it loads anywhere ``mlflow.pyfunc.load_model`` runs.

    ``member_files``: fitted members by name, as files; ``load_context`` puts them into
    ``model.members``. With them, no input example is logged: MLflow would load every member
    to check it each run, and its check only warns (the tests price such rows instead)."""
    members = {f"{MEMBER_ARTIFACT}{m}": str(path) for m, path in (member_files or {}).items()}
    with tempfile.TemporaryDirectory() as tmp, quiet_artifact_downloads(), warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example was not provided")
        artifact = Path(tmp) / "price_model.joblib"
        dump_model(artifact, model)
        return mlflow.pyfunc.log_model(
            name=name,
            python_model=str(MODEL_CODE),
            artifacts={ARTIFACT: str(artifact), **members},
            code_paths=[str(Path(houseprices.__file__).parent)],
            pip_requirements=pip_requirements(),
            signature=price_signature(rows),
            input_example=None if members else input_example(rows),
            registered_model_name=registered_name,
        )
