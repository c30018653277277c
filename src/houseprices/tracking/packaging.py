"""The priced-house model as an MLflow model logged "from code" (``model_code.py``): the weights
and each member's fitted pipeline (the file its train stage wrote) travel as joblib artifacts, so
nothing is cloudpickled, the logging stage never unpickles a member, and the model loads wherever
its ``requirements.txt`` installs (the package code is logged beside it)."""

from __future__ import annotations

import tempfile
import warnings
from collections.abc import Mapping
from pathlib import Path

import mlflow
import pandas as pd
from mlflow.models import Model, ModelSignature
from mlflow.types import ColSpec, Schema
from mlflow.types.schema import AnyType

import houseprices
from houseprices.tracking.lineage import package_version
from houseprices.util.files import dump_model

MODEL_CODE = Path(__file__).with_name("model_code.py")
# What houseprices' modules import when the model loads (a test loads it from its requirements alone).
LOADING_PACKAGES = ("mlflow", "scikit-learn", "pandas", "numpy", "scipy", "joblib", "pydantic", "ruamel.yaml", "psutil")
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


def pip_requirements(packages=()) -> list[str]:
    """What loading imports (our code; ``packages``: the members'), pinned as installed: MLflow's
    inference would reload the model, costlier than the stage. ``2.13.0+cpu`` -> PyPI's ``2.13.0``."""
    return [f"{p}=={package_version(p).split('+')[0]}" for p in dict.fromkeys((*LOADING_PACKAGES, *packages))]


def price_signature(rows: pd.DataFrame) -> ModelSignature:
    """Every column optional and nullable: numeric columns take ints or floats with NaN
    (``AnyType``: pandas reads a column with a gap as float, without one as int), text
    columns take strings or missing values."""
    numeric = set(rows.select_dtypes("number").columns)
    inputs = Schema([ColSpec(AnyType() if c in numeric else "string", c, required=False) for c in rows.columns])
    return ModelSignature(inputs=inputs, outputs=Schema([ColSpec("double")]))


def log_price_model(model, rows, run_id: str, registered_name: str | None, members: Mapping[str, Path], packages=()):
    """Log (and with a name, register) ``model`` on run ``run_id``; ``members``: its fitted members
    by name, as files, which ``load_context`` puts into ``model.members``. No input example:
    MLflow would load every member to check it each run (the tests price such rows instead)."""
    artifacts = {f"{MEMBER_ARTIFACT}{m}": str(path) for m, path in members.items()}
    with tempfile.TemporaryDirectory() as tmp, warnings.catch_warnings():
        warnings.filterwarnings("ignore", message=".*input example was not provided")
        dump_model(Path(tmp) / "price_model.joblib", model)
        return Model.log(  # mlflow.pyfunc.log_model, on a run given by id rather than the active one
            artifact_path=None,
            name="model",
            flavor=mlflow.pyfunc,
            flavor_name="pyfunc.ModelFromCode",
            run_id=run_id,
            python_model=str(MODEL_CODE),
            artifacts={ARTIFACT: str(Path(tmp) / "price_model.joblib"), **artifacts},
            code_paths=[str(Path(houseprices.__file__).parent)],
            pip_requirements=pip_requirements(packages),
            signature=price_signature(rows),
            registered_model_name=registered_name,
        )
