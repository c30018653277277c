"""The one YAML loader for params.yaml and search.yaml: a missing file, bad YAML, a key written
twice or a byte that is not UTF-8 is one line naming the file (and the line or byte offset)."""

from __future__ import annotations

from pathlib import Path

import yaml

from houseprices.errors import ConfigError


class DuplicateKeyError(yaml.YAMLError):
    """A mapping key written twice: plain YAML loaders silently keep the last one."""


class UniqueKeyLoader(yaml.SafeLoader):
    """``yaml.SafeLoader`` that refuses a key written twice in one mapping."""

    def construct_mapping(self, node, deep=False):
        seen: dict[object, int] = {}
        for key_node, _ in node.value:
            if key_node.tag == "tag:yaml.org,2002:merge":
                continue
            key = self.construct_object(key_node, deep=True)
            if not isinstance(key, str | int | float | bool | None):
                continue  # unhashable keys: SafeLoader reports them
            line = key_node.start_mark.line + 1
            if key in seen:
                raise DuplicateKeyError(
                    f"line {line}: key {key!r} is already set at line {seen[key]} "
                    "(a later copy would silently win); keep one"
                )
            seen[key] = line
        return super().construct_mapping(node, deep=deep)


def load_yaml(path: Path, what: str = "file") -> dict:
    """The mapping at the top of ``path`` (empty for an empty file); every problem is a
    ConfigError naming the file, ``what`` it is and where in it."""
    try:
        raw = yaml.load(path.read_text(encoding="utf-8"), Loader=UniqueKeyLoader)  # noqa: S506 - a SafeLoader
    except FileNotFoundError:
        raise ConfigError(f"{path}: {what} not found") from None
    except DuplicateKeyError as err:
        raise ConfigError(f"{path}, {err}") from None
    except UnicodeDecodeError as err:
        raise ConfigError(f"{path}: not UTF-8 text ({err.reason} at byte offset {err.start})") from None
    except yaml.YAMLError as err:
        raise ConfigError(f"{path}: not valid YAML: {' '.join(str(err).split())}") from None
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise ConfigError(f"{path}: expected a mapping at the top level, got {type(raw).__name__}")
    return raw
