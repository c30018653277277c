"""Pydantic's validation errors as one line: the file, then each offending key and what is wrong with it."""

from __future__ import annotations

from typing import get_args

from pydantic import ValidationError

from houseprices.config.base import Strict
from houseprices.config.models import ModelConfig

# Sections keyed by a name the user chose (which may hold "-", like "mlp-wide").
NAMED_SECTIONS = ("models", "search")

KINDS = "one of: " + ", ".join(
    get_args(m.model_fields["kind"].annotation)[0] for m in get_args(get_args(ModelConfig)[0])
)


def _model_names(cls: type = Strict) -> set[str]:
    return {sub.__name__ for sub in cls.__subclasses__()}.union(*(_model_names(s) for s in cls.__subclasses__()))


def _is_branch(part: str) -> bool:
    """Union branch labels pydantic puts in a location ("constrained-float", "list[int]",
    "function-after[_check(), FloatRange]", a model class name or a tag such as "Range")
    are not keys (a param may still be called "C")."""
    return any(ch in part for ch in "-[( ") or part in _model_names() or part in ("Range", "Choices")


def _split(loc: tuple, kind_tagged: bool = True) -> tuple[list[str], str | None]:
    """The error's keys, and the union branch it belongs to (None outside unions).
    ``kind_tagged``: ``models.<name>`` entries are tagged by their kind (params.yaml)."""
    parts = [str(p) for p in loc]
    keys, branch = [], None
    if parts[:1] and parts[0] in NAMED_SECTIONS:
        keys, parts = parts[:2], parts[2:]
        if keys[0] == "models" and kind_tagged:
            parts = parts[1:]  # the discriminated union's tag (the model kind)
    for part in parts:
        if _is_branch(part):
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


def describe(err: ValidationError, source: str, kind_tagged: bool = True) -> str:
    """One line: the file, then each offending key with what is wrong with it."""
    problems = {}
    for e in _closest_branches(err.errors(), kind_tagged):
        problems.setdefault(".".join(_split(e["loc"], kind_tagged)[0]) or "<root>", _message(e))
    return f"{source}: " + "; ".join(f"{key}: {msg}" for key, msg in problems.items())
