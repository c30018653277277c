"""A config file validated; any problem is one line: the file, then each offending key and what is wrong with it."""

from __future__ import annotations

from typing import TypeVar, get_args

from pydantic import BaseModel, ValidationError

from houseprices.config.models import ModelConfig
from houseprices.errors import ConfigError

M = TypeVar("M", bound=BaseModel)

KINDS = "one of: " + ", ".join(
    get_args(m.model_fields["kind"].annotation)[0] for m in get_args(get_args(ModelConfig)[0])
)


def _split(loc: tuple, kind_tagged: bool = True) -> tuple[list[str], str | None]:
    """The error's keys, and the union branch it belongs to (None outside unions).
    ``kind_tagged``: ``models.<name>`` entries are tagged by their kind (params.yaml)."""
    parts = [str(p) for p in loc]
    keys, branch = [], None
    if parts[:1] == ["models"]:  # keyed by a name the user chose (which may hold "-", like "mlp-wide")
        keys, parts = parts[:2], parts[3 if kind_tagged else 2 :]  # after the discriminated union's tag (the kind)
    for part in parts:
        # Union branch labels pydantic puts in a location ("constrained-float", "list[int]" or a tag
        # such as "Range") are not keys (a param may still be called "C").
        if any(ch in part for ch in "-[( ") or part in ("Range", "Choices"):
            branch = branch or part
        else:
            keys.append(part)
    return keys, branch


def _closest_branches(errors: list[dict], kind_tagged: bool = True) -> list[dict]:
    """Where a value matches no member of a union, keep the errors of the member it comes
    closest to (the fewest errors, then the deepest): a bad search range is reported as a
    range, not also as a malformed list of choices."""
    depths: dict[tuple, dict[str, list[int]]] = {}
    for e in errors:
        branch = _split(e["loc"], kind_tagged)[1]
        if branch is not None:
            where = tuple(e["loc"][: e["loc"].index(branch)])
            depths.setdefault(where, {}).setdefault(branch, []).append(len(e["loc"]))
    best = {where: min(d, key=lambda b: (len(d[b]), -max(d[b]))) for where, d in depths.items()}
    return [
        e
        for e in errors
        if (b := _split(e["loc"], kind_tagged)[1]) is None or best[tuple(e["loc"][: e["loc"].index(b)])] == b
    ]


def _message(e: dict) -> str:
    if e["type"] == "extra_forbidden":
        return "unknown key (misspelled?)"
    if e["type"] == "union_tag_not_found":
        return f"missing 'kind' ({KINDS})"
    if e["type"] == "union_tag_invalid":
        return f"unknown kind {e['input'].get('kind')!r} ({KINDS})"
    return e["msg"].removeprefix("Value error, ")


def validate(cls: type[M], raw: object, source: str, kind_tagged: bool = True) -> M:
    """``raw`` (a mapping; None for an empty file) as a ``cls``, or a ConfigError naming ``source``."""
    if raw is None:
        raw = {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{source}: expected a mapping at the top level, got {type(raw).__name__}")
    try:
        return cls.model_validate(raw)
    except ValidationError as err:
        problems = {}
        for e in _closest_branches(err.errors(), kind_tagged):
            problems.setdefault(".".join(_split(e["loc"], kind_tagged)[0]) or "<root>", _message(e))
        raise ConfigError(f"{source}: " + "; ".join(f"{key}: {msg}" for key, msg in problems.items())) from None
