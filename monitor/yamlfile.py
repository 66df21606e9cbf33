"""Read one YAML mapping from a user's file, turning every failure into a ConfigError.

A config file is trusted no more than any input: it is refused when it is larger than
MAX_FILE_BYTES, nested deeper than MAX_DEPTH, or holds more than MAX_NODES values once its
aliases are expanded (a "billion laughs" of a few lines would otherwise take gigabytes in the
code that walks the values), and a key given twice in one mapping is a mistake, not "the last
one wins" as PyYAML has it.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import yaml

from monitor.errors import ConfigError

# libyaml's loader when PyYAML was built with it (ten times faster), else the pure-Python one
SAFE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)

MAX_FILE_BYTES = 1024 * 1024
"""1 MiB: the largest config, source, rule or reply file read (the shipped ones: < 10 KiB)."""
MAX_DEPTH = 100
"""Lists and mappings inside each other at most this deep."""
MAX_NODES = 100_000
"""Values in a file at most, each alias counted as everything it stands for."""

_MERGE = "tag:yaml.org,2002:merge"


class _Duplicate(yaml.MarkedYAMLError):
    """A key given twice in one mapping: valid YAML, but surely a mistake."""


class _NotADate(yaml.MarkedYAMLError):
    """An unquoted value shaped like a date that no calendar has (2026-02-30)."""


class _Loader(SAFE_LOADER):  # type: ignore[misc,valid-type]
    """The safe loader, refusing a key given twice in one mapping and a date that does not
    exist (PyYAML raises a bare ValueError there, with no file or line)."""

    def construct_yaml_timestamp(self, node: yaml.ScalarNode) -> Any:
        try:
            return super().construct_yaml_timestamp(node)
        except (ValueError, OverflowError) as error:
            raise _NotADate(None, None, f"{node.value!r} is not a date ({error}); quote it "
                            "if it is not meant as one", node.start_mark) from None

    def get_single_data(self) -> Any:
        node = self.get_single_node()
        if node is None:
            return None
        _no_duplicates(self, node)     # on the nodes as written, before ``<<:`` merges
        return self.construct_document(node)


_Loader.add_constructor("tag:yaml.org,2002:timestamp", _Loader.construct_yaml_timestamp)


def _no_duplicates(loader: _Loader, root: yaml.Node) -> None:
    """A key written twice in one mapping (one that ``<<:`` merges in may be overridden)."""
    stack, seen = [root], set()
    while stack:
        node = stack.pop()
        if id(node) in seen or isinstance(node, yaml.ScalarNode):
            continue
        seen.add(id(node))
        if isinstance(node, yaml.SequenceNode):
            stack.extend(node.value)
            continue
        lines: dict[Any, int] = {}
        for key_node, value_node in node.value:
            stack.append(value_node)
            if key_node.tag == _MERGE or not isinstance(key_node, yaml.ScalarNode):
                continue
            key = loader.construct_object(key_node)
            try:
                first = lines.get(key)
            except TypeError:  # unhashable: the constructor says so
                continue
            if first is not None:
                raise _Duplicate(
                    None, None, f"key {key!r} given twice (also on line {first}): YAML would "
                    "silently keep only the last", key_node.start_mark)
            lines[key] = key_node.start_mark.line + 1


def read_yaml(path: Path, shown: str) -> dict[str, Any]:
    """The mapping in ``path``; ``shown`` is how messages name the file (relative to config)."""
    if not path.exists():
        raise ConfigError("file not found", shown)
    text = _text(path, shown)
    try:
        _check_shape(text, shown)
        data = yaml.load(text, Loader=_Loader)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark else None
        problem = getattr(error, "problem", None) or error
        raise ConfigError(problem if isinstance(error, (_Duplicate, _NotADate)) else
                          f"not valid YAML ({problem})", shown, where) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError("must be a mapping of keys to values", shown)
    return data


def _text(path: Path, shown: str) -> str:
    """The file's text, read no further than the size cap (a huge or endless file costs
    nothing); a FIFO or device is refused rather than read (it could block forever)."""
    try:
        if not path.is_file():
            raise ConfigError("not a regular file", shown)
        with path.open("rb") as handle:
            raw = handle.read(MAX_FILE_BYTES + 1)
    except OSError as error:
        raise ConfigError(f"cannot read ({error.strerror or error})", shown) from None
    if len(raw) > MAX_FILE_BYTES:
        raise ConfigError(f"larger than {MAX_FILE_BYTES // 1024 // 1024} MiB: too large for a "
                          "config, source, rule or reply file", shown)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise ConfigError(f"not UTF-8 text (byte {raw[error.start]:#04x} at offset "
                          f"{error.start}): save it as UTF-8", shown) from None


def _check_shape(text: str, shown: str) -> None:
    """Refuse, from the parser's events and before any value is built, a document nested
    deeper than MAX_DEPTH, one whose aliases expand to more than MAX_NODES values, and an
    alias inside the very anchor it names (a loop, which PyYAML builds as a cyclic list)."""
    total = 0
    sizes: dict[str, int] = {}          # anchor -> values it stands for, once it is closed
    open_: list[tuple[str | None, int]] = []   # (anchor, total before it) of open collections
    for event in yaml.parse(text, Loader=SAFE_LOADER):
        if isinstance(event, yaml.AliasEvent):
            if any(anchor == event.anchor for anchor, _ in open_):
                raise _refused(f"alias *{event.anchor} is inside its own anchor "
                               f"&{event.anchor}: an endless loop", shown, event)
            total += sizes.get(event.anchor, 1)   # an unknown anchor: the loader says so
        elif isinstance(event, yaml.ScalarEvent):
            total += 1
            if event.anchor:
                sizes[event.anchor] = 1
        elif isinstance(event, yaml.CollectionStartEvent):
            open_.append((event.anchor, total))
            total += 1
            if len(open_) > MAX_DEPTH:
                raise _refused(f"nested more than {MAX_DEPTH} levels deep", shown, event)
        elif isinstance(event, yaml.CollectionEndEvent):
            anchor, before = open_.pop()
            if anchor:
                sizes[anchor] = total - before
        if total > MAX_NODES:
            raise _refused(f"holds more than {MAX_NODES:,} values once its aliases are "
                           "expanded: too many for a config, source, rule or reply file",
                           shown, event)


def _refused(message: str, shown: str, event: yaml.Event) -> ConfigError:
    return ConfigError(message, shown, f"line {event.start_mark.line + 1}")


def shown_path(path: Path, base: Path) -> str:
    """``path`` relative to the config folder when it lies inside it."""
    try:
        return str(path.relative_to(base))
    except ValueError:
        return str(path)
