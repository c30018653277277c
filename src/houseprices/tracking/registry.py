"""The model registry: each pipeline's ensemble is a version tagged with its lineage; aliases say
which one is the team's best (``@champion``) and which was uploaded to Kaggle (``@submitted``).

A version contends for ``@champion`` when the submission stage runs in the workspace (not in a
queued or ``--temp`` experiment's copy; after ``dvc exp apply``, ``dvc repro -s -f submission``
enters that experiment's version, found by its predictions' SHA-256). The alias points at the
contender with the lowest CV log-RMSE, the older on a tie: a pipeline takes it only by beating
the champion, never by running later. ``houseprices champion --version N`` moves it by hand: N
becomes the only contender. Claims take no lock: each tags its version before it reads the
contenders and sets the alias again if the best changed meanwhile, so two at once settle on the
better."""

from __future__ import annotations

import contextlib
import datetime as dt
import getpass
import logging
import math
import socket
import warnings
from dataclasses import dataclass
from pathlib import Path

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from houseprices.errors import TrackingError
from houseprices.tracking.tags import PIPELINE_RUN_TAG, PRIMARY_METRIC
from houseprices.util.files import file_sha256, staged

logger = logging.getLogger(__name__)

CHAMPION, SUBMITTED = "champion", "submitted"
PREDICTIONS_TAG, SUBMISSION_TAG = "predictions.sha256", "submission.sha256"
VERSION_LINEAGE = ("git.commit", "git.dirty", "dvc.experiment")
CONTENDER_TAG = "champion.contender"
CV_TAG = f"champion.{PRIMARY_METRIC}"
CLAIMED_BY_TAG, PROMOTED_BY_TAG = "champion.claimed_by", "champion.promoted_by"


@dataclass(frozen=True)
class Claim:
    version: str  # the version that claimed
    cv: float
    champion: str  # the version @champion points at afterwards
    champion_cv: float

    @property
    def won(self) -> bool:
        return self.version == self.champion


def describe_version(client: MlflowClient, name: str, version: str, description: str, tags: dict[str, str]) -> None:
    if description:
        client.update_model_version(name, version, description)
    for key, value in tags.items():
        client.set_model_version_tag(name, version, key, str(value))


def find_version(client: MlflowClient, name: str, tag: str, value: str, prefer=lambda v: False) -> ModelVersion | None:
    """The newest version of ``name`` tagged ``tag=value``, one for which ``prefer`` holds first."""
    found = client.search_model_versions(f"name = '{name}' and tags.`{tag}` = '{value}'")
    return max(found, key=lambda v: (bool(prefer(v)), int(v.version)), default=None)


def alias_version(client: MlflowClient, name: str, alias: str) -> ModelVersion | None:
    with contextlib.suppress(MlflowException):
        return client.get_model_version_by_alias(name, alias)
    return None


def who() -> str:
    """The teammate behind a claim, as the registry shows it."""
    with contextlib.suppress(KeyError, OSError):
        return f"{getpass.getuser()}@{socket.gethostname()}"
    return f"unknown@{socket.gethostname()}"


def version_cv(client: MlflowClient, version: ModelVersion) -> float:
    """The version's CV log-RMSE: its tag once it claimed, else its run's metric (inf if none)."""
    if CV_TAG in version.tags:
        return float(version.tags[CV_TAG])
    value = None
    with contextlib.suppress(MlflowException):
        value = client.get_run(version.run_id).data.metrics.get(PRIMARY_METRIC) if version.run_id else None
    return float(value) if value is not None and math.isfinite(value) else math.inf


def _contenders(client: MlflowClient, name: str) -> list[ModelVersion]:
    found = client.search_model_versions(f"name = '{name}' and tags.`{CONTENDER_TAG}` = 'true'")
    return sorted(found, key=lambda v: (version_cv(client, v), int(v.version)))  # the best first; a tie: the older


def _enter(client: MlflowClient, name: str, version: ModelVersion, by_tag: str) -> float:
    cv = version_cv(client, version)
    for key, value in ((CV_TAG, repr(cv)), (by_tag, who()), (CONTENDER_TAG, "true")):
        client.set_model_version_tag(name, version.version, key, value)
    return cv


def claim(client: MlflowClient, name: str, version: ModelVersion) -> Claim:
    """Enter ``version`` for ``@champion``: it wins if its CV beats every other contender's."""
    current = alias_version(client, name, CHAMPION)
    if current is not None and current.tags.get(CONTENDER_TAG) != "true":
        _enter(client, name, current, CLAIMED_BY_TAG)  # set before this rule: it defends its place
    cv = _enter(client, name, version, CLAIMED_BY_TAG)
    best = version
    for _ in range(3):  # again if a claim landed while this one wrote
        best = next(iter(_contenders(client, name)), version)
        current = alias_version(client, name, CHAMPION)
        if current is not None and current.version == best.version:
            break
        try:
            client.set_registered_model_alias(name, CHAMPION, best.version)
        except MlflowException as err:  # MLflow reads, then inserts: another claim made the alias first
            if "unique" not in str(err).lower():
                raise
    return Claim(str(version.version), cv, str(best.version), version_cv(client, best))


def promote(client: MlflowClient, name: str, version: str) -> Claim:
    """``houseprices champion --version N``: N takes ``@champion`` whatever its CV and becomes
    the only contender, so later pipelines must beat N."""
    try:
        chosen = client.get_model_version(name, version)
    except MlflowException:
        raise TrackingError(f"registered model {name} has no version {version}") from None
    cv = _enter(client, name, chosen, PROMOTED_BY_TAG)
    for other in _contenders(client, name):
        if other.version != chosen.version:
            client.delete_model_version_tag(name, other.version, CONTENDER_TAG)
    client.set_registered_model_alias(name, CHAMPION, chosen.version)
    return Claim(str(chosen.version), cv, str(chosen.version), cv)


def describe(client: MlflowClient, name: str) -> str:
    """One line per contender, the champion first: what ``houseprices champion`` prints."""
    current = alias_version(client, name, CHAMPION)
    if current is None:
        return f"{name}: no @{CHAMPION} yet (the submission stage of a workspace run sets it)"
    versions = [current, *[c for c in _contenders(client, name) if c.version != current.version]]
    return "\n".join(
        f"{name} version {v.version}: {f'@{CHAMPION}' if v is current else 'contender'}, "
        f"CV log-RMSE {version_cv(client, v):.5f}, {v.tags.get(PROMOTED_BY_TAG) or v.tags.get(CLAIMED_BY_TAG, '')}"
        for v in versions
    )


def crown(client, name: str, predictions: Path, submission: Path, pipeline_id: str, workspace: bool) -> None:
    """Tag the version behind ``predictions`` (this pipeline run's first) with the submission's
    digest and, in the workspace, enter it for ``@champion`` (it wins by beating the champion's CV)."""
    digest = file_sha256(staged(predictions))  # the submission stage's files: maybe not yet in place
    version = find_version(client, name, PREDICTIONS_TAG, digest, lambda v: v.tags.get(PIPELINE_RUN_TAG) == pipeline_id)
    if version is None:
        logger.warning("no %s version was registered with %s; @%s unchanged", name, predictions, CHAMPION)
        return
    client.set_model_version_tag(name, version.version, SUBMISSION_TAG, file_sha256(staged(submission)))
    if not workspace:
        return
    outcome = claim(client, name, version)
    if outcome.won:
        logger.info("%s version %s (CV %.5f) is @%s", name, outcome.version, outcome.cv, CHAMPION)
    else:
        beaten_by = f"@{CHAMPION} version {outcome.champion} (CV {outcome.champion_cv:.5f})"
        logger.warning(
            f"{name} version {outcome.version} (CV {outcome.cv:.5f}) does not beat {beaten_by}: @{CHAMPION} "
            f"unchanged (`houseprices champion --version {outcome.version}` moves it by hand)"
        )


def mark_submitted(client: MlflowClient, name: str, submission: Path, message: str) -> str | None:
    """After ``houseprices submit``: point ``@submitted`` at the version whose submission was
    uploaded and tag it with the message and time. Returns the version, or None (with a
    warning: the upload already happened) when no version produced it."""
    champion = getattr(alias_version(client, name, CHAMPION), "version", None)  # the same file may come from several
    version = find_version(client, name, SUBMISSION_TAG, file_sha256(submission), lambda v: v.version == champion)
    if version is None:
        warnings.warn(f"{submission}: no {name} version produced it; @{SUBMITTED} unchanged", stacklevel=2)
        return None
    client.set_registered_model_alias(name, SUBMITTED, version.version)
    now = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
    describe_version(client, name, version.version, "", {"kaggle.message": message[:5000], "kaggle.submitted_at": now})
    return str(version.version)
