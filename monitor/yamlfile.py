"""Read one YAML mapping from a user's file, turning every failure into a ConfigError."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

# libyaml's loader when PyYAML was built with it (ten times faster), else the pure-Python one
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def read_yaml(path: Path, shown: str) -> dict[str, Any]:
    """The mapping in ``path``; ``shown`` is how messages name the file (relative to config)."""
    if not path.exists():
        raise ConfigError("file not found", shown)
    try:
        data = yaml.load(path.read_text(encoding="utf-8"), Loader=SAFE_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        raise ConfigError(f"not valid YAML ({getattr(error, 'problem', None) or error})", shown,
                          where) from None
    except (OSError, UnicodeDecodeError) as error:
        raise ConfigError(f"cannot read ({error})", shown) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of keys to values", shown)
    return data


def shown_path(path: Path, base: Path) -> str:
    """``path`` relative to the config folder when it lies inside it."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
