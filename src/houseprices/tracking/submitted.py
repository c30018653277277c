"""``@submitted``: the registered version whose submission ``houseprices submit`` uploaded."""

from __future__ import annotations

import datetime as dt
import warnings
from pathlib import Path

from houseprices.tracking.lineage import file_sha256
from houseprices.tracking.registry import (
    CHAMPION,
    SUBMISSION_TAG,
    SUBMITTED,
    alias_version,
    describe_version,
    find_version,
)
from houseprices.tracking.tracker import connect


def mark_submitted(params, submission: Path, message: str) -> str | None:
    """After ``houseprices submit``: point ``@submitted`` at the version whose submission
    was uploaded and tag it with the message and time. Returns the version, or None (with a
    warning: the upload already happened) when the store or version cannot be found."""
    name = params.tracking.registered_model
    if not name:
        return None
    try:
        client, _ = connect(params)
        # Identical files may come from several versions: the workspace's (@champion) first.
        champion = alias_version(client, name, CHAMPION)
        version = find_version(
            client, name, SUBMISSION_TAG, file_sha256(Path(submission)), prefer=lambda v: str(v.version) == champion
        )
        if version is None:
            warnings.warn(f"{submission}: no {name} version produced it; @{SUBMITTED} unchanged", stacklevel=2)
            return None
        client.set_registered_model_alias(name, SUBMITTED, version.version)
        describe_version(
            client,
            name,
            version.version,
            "",
            {
                "kaggle.message": message[:5000],
                "kaggle.submitted_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            },
        )
        return str(version.version)
    except Exception as err:  # noqa: BLE001 - the upload is done; the registry is bookkeeping
        warnings.warn(f"could not mark the submission in the registry: {err}", stacklevel=2)
        return None
