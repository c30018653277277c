"""The one YAML library for this project's own files (ruamel.yaml, which also edits params.yaml
in place for ``search --apply``): a missing file, bad YAML, a key written twice or a byte that is
not UTF-8 is one line naming the file (and the line or byte offset)."""

from __future__ import annotations

from pathlib import Path

from ruamel.yaml import YAML, MappingNode, SequenceNode
from ruamel.yaml.constructor import DuplicateKeyError
from ruamel.yaml.error import YAMLError

from houseprices.errors import ConfigError


def _first_duplicate(node) -> str:
    """Where a key is written twice in one mapping (ruamel's own error names the mapping's start)."""
    if isinstance(node, MappingNode):
        seen: dict[str, int] = {}
        for key, value in node.value:
            line = key.start_mark.line + 1
            if key.value in seen and key.tag != "tag:yaml.org,2002:merge":
                return f"line {line}: key {key.value!r} is already set at line {seen[key.value]}"
            seen[key.value] = line
            if found := _first_duplicate(value):
                return found
    elif isinstance(node, SequenceNode):
        return next(filter(None, map(_first_duplicate, node.value)), "")
    return ""


def load_yaml(path: Path, what: str = "file") -> object:
    """What ``path`` holds (None for an empty file); every problem is a ConfigError naming the
    file, ``what`` it is and where in it."""
    try:
        text = path.read_text(encoding="utf-8")
        return YAML(typ="safe").load(text)
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte offset {err.start})") from None
    except DuplicateKeyError:
        where = _first_duplicate(YAML(typ="safe").compose(text))
        raise ConfigError(f"{path}, {where} (a later copy would silently win); keep one") from None
    except YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
