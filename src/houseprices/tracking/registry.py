"""The model registry: each pipeline's ensemble is a version, tagged with its lineage;
aliases say which one is the team's best (``@champion``) and which was uploaded.

A version enters the race for ``@champion`` only when the submission stage runs in the
workspace (``dvc repro``, or ``dvc exp run`` without ``--queue``/``--temp``); it takes the
alias only by beating the current champion's CV (:mod:`.champion`). Experiments in DVC's
temporary copies under ``.dvc/tmp/exps`` register versions but do not compete. After ``dvc exp
apply`` of such an experiment, ``dvc repro -s -f submission`` enters that experiment's version
(found by the SHA-256 of the predictions it was registered with).
"""

from __future__ import annotations

import logging
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from houseprices.tracking.champion import CHAMPION, claim
from houseprices.tracking.lineage import file_sha256

logger = logging.getLogger(__name__)

SUBMITTED = "submitted"
PREDICTIONS_TAG = "predictions.sha256"
SUBMISSION_TAG = "submission.sha256"
VERSION_LINEAGE = ("git.commit", "git.dirty", "dvc.experiment")


def describe_version(client: MlflowClient, name: str, version: str, description: str, tags: dict[str, str]) -> None:
    if description:
        client.update_model_version(name, version, description)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def find_version(
    client: MlflowClient, name: str, tag: str, value: str, prefer=lambda version: False
) -> ModelVersion | None:
    """The newest version of ``name`` tagged ``tag=value``, one for which ``prefer`` holds first."""
    found = client.search_model_versions(f"name = '{name}' and tags.`{tag}` = '{value}'")
    found.sort(key=lambda v: (bool(prefer(v)), int(v.version)), reverse=True)
    return found[0] if found else None


def alias_version(client: MlflowClient, name: str, alias: str) -> str | None:
    """The version number behind ``name@alias``, or None when the alias is not set."""
    try:
        return str(client.get_model_version_by_alias(name, alias).version)
    except MlflowException:
        return None


def crown(
    client: MlflowClient,
    name: str,
    predictions: Path,
    submission: Path,
    *,
    pipeline_tag: tuple[str, str],
    workspace: bool,
) -> ModelVersion | None:
    """Tag the version behind ``predictions`` with the submission's digest and, in the
    workspace, enter it for ``@champion`` (it wins by beating the champion's CV)."""
    key, value = pipeline_tag
    version = find_version(
        client, name, PREDICTIONS_TAG, file_sha256(predictions), prefer=lambda v: v.tags.get(key) == value
    )
    if version is None:
        logger.warning("no %s version was registered with %s; @%s unchanged", name, predictions, CHAMPION)
        return None
    client.set_model_version_tag(name, version.version, SUBMISSION_TAG, file_sha256(submission))
    if workspace:
        outcome = claim(client, name, version)
        if outcome.won:
            logger.info("%s version %s (CV %.5f) is @%s", name, outcome.version, outcome.cv, CHAMPION)
        else:
            logger.warning(
                "%s version %s (CV %.5f) does not beat @%s version %s (CV %.5f): @%s unchanged "
                "(`houseprices champion --version %s` moves it by hand)",
                name, outcome.version, outcome.cv, CHAMPION, outcome.champion, outcome.champion_cv, CHAMPION,
                outcome.version,
            )  # fmt: skip
    return version
