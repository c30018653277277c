"""``@champion`` in a registry several people share: the contender with the best CV holds it.

A version becomes a contender when the submission stage runs in a workspace (``dvc repro``,
``dvc exp run`` without ``--queue``/``--temp``). The alias then points at the contender with
the lowest CV log-RMSE, the older version on a tie: a teammate's pipeline takes it only by
beating the current champion, never by merely running later. ``houseprices champion --version
N`` moves it by hand (to a worse version too): N becomes the only contender, and the rule goes
on from there.

Claims do not lock the registry. Each claim tags its version before it reads the contenders,
and sets the alias again if the best one changed while it wrote, so two claims at once settle
on the better of the two.
"""

from __future__ import annotations

import getpass
import logging
import math
import socket
from dataclasses import dataclass

from mlflow.entities.model_registry import ModelVersion
from mlflow.exceptions import MlflowException
from mlflow.tracking import MlflowClient

from houseprices.errors import TrackingError
from houseprices.tracking.tags import PRIMARY_METRIC

logger = logging.getLogger(__name__)

CHAMPION = "champion"
CONTENDER_TAG = "champion.contender"
CV_TAG = f"champion.{PRIMARY_METRIC}"
CLAIMED_BY_TAG = "champion.claimed_by"
PROMOTED_BY_TAG = "champion.promoted_by"


@dataclass(frozen=True)
class Claim:
    version: str  # the version that claimed
    cv: float
    champion: str  # the version @champion points at afterwards
    champion_cv: float

    @property
    def won(self) -> bool:
        return self.version == self.champion


def who() -> str:
    """The teammate behind a claim, as the registry shows it."""
    try:
        user = getpass.getuser()
    except (KeyError, OSError):
        user = "unknown"
    return f"{user}@{socket.gethostname()}"


def version_cv(client: MlflowClient, version: ModelVersion) -> float:
    """The version's CV log-RMSE: its tag once it claimed, else its run's metric (inf if none)."""
    if CV_TAG in version.tags:
        return float(version.tags[CV_TAG])
    try:
        value = client.get_run(version.run_id).data.metrics.get(PRIMARY_METRIC) if version.run_id else None
    except MlflowException:
        value = None
    return float(value) if value is not None and math.isfinite(value) else math.inf


def _contenders(client: MlflowClient, name: str) -> list[ModelVersion]:
    return client.search_model_versions(f"name = '{name}' and tags.`{CONTENDER_TAG}` = 'true'")


def _best(client: MlflowClient, name: str) -> ModelVersion | None:
    """The contender with the lowest CV; on a tie, the older version (it was there first)."""
    return min(_contenders(client, name), key=lambda v: (version_cv(client, v), int(v.version)), default=None)


def _current(client: MlflowClient, name: str) -> ModelVersion | None:
    try:
        return client.get_model_version_by_alias(name, CHAMPION)
    except MlflowException:
        return None


def _enter(client: MlflowClient, name: str, version: ModelVersion, by_tag: str) -> float:
    cv = version_cv(client, version)
    client.set_model_version_tag(name, version.version, CV_TAG, repr(cv))
    client.set_model_version_tag(name, version.version, by_tag, who())
    client.set_model_version_tag(name, version.version, CONTENDER_TAG, "true")
    return cv


def settle(client: MlflowClient, name: str) -> ModelVersion | None:
    """Point ``@champion`` at the best contender, again if a claim landed while it wrote."""
    for _ in range(3):
        best = _best(client, name)
        if best is None:
            return None
        current = _current(client, name)
        if current is not None and current.version == best.version:
            return best
        client.set_registered_model_alias(name, CHAMPION, best.version)
    return best


def claim(client: MlflowClient, name: str, version: ModelVersion) -> Claim:
    """Enter ``version`` for ``@champion``: it wins if its CV beats every other contender's."""
    current = _current(client, name)
    if current is not None and current.tags.get(CONTENDER_TAG) != "true":
        _enter(client, name, current, CLAIMED_BY_TAG)  # set before this rule: it defends its place
    cv = _enter(client, name, version, CLAIMED_BY_TAG)
    champion = settle(client, name) or version
    return Claim(str(version.version), cv, str(champion.version), version_cv(client, champion))


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
    current = _current(client, name)
    if current is None:
        return f"{name}: no @{CHAMPION} yet (the submission stage of a workspace run sets it)"
    contenders = sorted(_contenders(client, name), key=lambda v: (version_cv(client, v), int(v.version)))
    lines = []
    for v in [current, *[c for c in contenders if c.version != current.version]]:
        mark = f"@{CHAMPION}" if v.version == current.version else "contender"
        by = v.tags.get(PROMOTED_BY_TAG) or v.tags.get(CLAIMED_BY_TAG, "")
        lines.append(f"{name} version {v.version}: {mark}, CV log-RMSE {version_cv(client, v):.5f}, {by}")
    return "\n".join(lines)
