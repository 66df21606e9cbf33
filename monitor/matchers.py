"""One matcher syntax, and one implementation of it, for a rule's label conditions, a route's
``match:`` and a silence's ``--match KEY=VALUE``: so a name means the same post everywhere.

A matcher maps label names to a value or a list of values. Every label named must match; a
list matches when any of its values does; values compare whole and case-insensitively, ``*``
standing for any run of characters (``reddit-*``). A label the post lacks (no author, no kind
known) matches no value, not even ``*``. The labels:

    source      the post's source name (sources/*.yaml ``name``)
    kind        the kind of the post's source (rss, reddit, ...)
    author      the post's author
    language    the post's language, ISO 639-1 (``unknown`` for texts too short to tell)
    source_tag  a tag of the post's source (sources/*.yaml ``tags``); any of them
    vip         true or false: the author is in ``vip_authors``
    severity    the flag's severity (low, medium, high, critical); also ``{min: high}``
    category    the flag's category
    flag_tag    a tag of the flag (the ``tags`` of the rules that matched); any of them
    rule        the id of a rule that flagged the post; any of them

A rule decides the flag, so its conditions (``monitor.conditions``) read only the first six,
known before. The labels object a matcher reads has the attributes ``source``, ``kind``,
``author``, ``language``, ``source_tags``, ``vip`` and, once flagged, ``severity``,
``category``, ``tags`` (the flag's) and ``rules``: ``route.Labels`` has them all, a rule's
``Subject`` the first six.

Older files wrote ``tag`` for two different things (RESPELLED): they are still read as they
meant, and ``monitor check`` says how to write them now (``respelling``).
"""

from __future__ import annotations

import re
from collections.abc import Callable, Iterable, Mapping, Sequence
from typing import Any

from monitor.model import SEVERITIES

LABELS: dict[str, str] = {
    "source": "the post's source name",
    "kind": "the kind of the post's source",
    "author": "the post's author",
    "language": "the post's language, ISO 639-1, or unknown for texts too short to tell",
    "source_tag": "a tag of the post's source",
    "vip": "true or false: whether the author is in vip_authors",
    "severity": "the flag's severity",
    "category": "the flag's category",
    "flag_tag": "a tag of the flag, from the rules that matched",
    "rule": "a rule that flagged the post",
}
RESPELLED: dict[str, dict[str, str]] = {
    "rule": {"tag": "source_tag"},      # a rule's ``tag:`` was its source's tag ...
    "route": {"tags": "flag_tag"},      # ... a route's ``tags:`` and a silence's ``tag=``
    "silence": {"tag": "flag_tag"},     # the flag's
}
"""Old spellings, per place they are written in: old name -> label."""

_READ: dict[str, Callable[[Any], Sequence[str | None]]] = {
    "source": lambda x: (x.source,), "kind": lambda x: (x.kind,),
    "author": lambda x: (x.author,), "language": lambda x: (x.language,),
    "source_tag": lambda x: x.source_tags, "severity": lambda x: (x.severity,),
    "category": lambda x: (x.category,), "flag_tag": lambda x: x.tags,
    "rule": lambda x: x.rules,
}


def respelling(old: str, label: str) -> str:
    """What ``monitor check`` says of an old spelling: that it still works, and the new one."""
    return f"'{old}' is an old spelling, still read: write {label} ({LABELS[label]})"


def glob(values: Iterable[str]) -> re.Pattern[str]:
    """One pattern that fully matches any of ``values``: case ignored, the blanks around a
    value dropped, ``*`` = any run of characters (none, or several lines)."""
    alternatives = (_glob(v.strip()) for v in values)
    return re.compile("(?:" + "|".join(alternatives) + ")", re.IGNORECASE | re.DOTALL)


def _glob(value: str) -> str:
    """One value as a pattern. A piece between two stars is taken where it first occurs, for
    good (``(?>.*?piece)``): that is the glob answer, while a plain ``.*`` per star would try
    every split and hang on ``*a*b*c*d*e*f*g*h*`` against a long name."""
    first, *middle = value.split("*")
    if not middle:
        return re.escape(first)
    *middle, last = middle
    found = "".join(f"(?>.*?{re.escape(piece)})" for piece in middle if piece)
    return f"{re.escape(first)}{found}.*{re.escape(last)}"


def at_least(value: Mapping[str, Any]) -> list[str]:
    """``{min: high}``, which reads better than listing high and critical: the severities
    from that one up (ValueError for any other mapping)."""
    low = value.get("min") if set(value) == {"min"} else None
    low = low.strip().lower() if isinstance(low, str) else low  # as ``severity: HIGH``
    if low not in SEVERITIES:
        raise ValueError(f"must be a list of severities or {{min: SEVERITY}}, a severity "
                         f"being one of {', '.join(SEVERITIES)}")
    return list(SEVERITIES[SEVERITIES.index(low):])


def severity(name: str) -> str:
    """``name`` if it is a severity (case ignored) or a pattern of them (``*``)."""
    if "*" not in name and name.strip().lower() not in SEVERITIES:
        raise ValueError(f"unknown severity {name!r} (use one of 'low', 'medium', 'high' or "
                         "'critical', or a pattern with *)")
    return name


def _names(value: Any) -> list[str]:
    """A value as a list of names: one name is a list of one (ValueError if neither)."""
    found = [value] if isinstance(value, str) else value
    if not isinstance(found, list) or not found or not all(
            isinstance(n, str) and n.strip() for n in found):
        raise ValueError("must be a name or a list of names")
    return found


def _severities(value: Any) -> list[str]:
    return at_least(value) if isinstance(value, dict) else [severity(n) for n in _names(value)]


class LabelMatch:
    """One label's part of a matcher: ``vip`` compares a boolean, every other label its
    values (ValueError for a label or a value that is not one)."""

    __slots__ = ("label", "wanted", "pattern", "read")

    def __init__(self, label: str, value: Any) -> None:
        if label not in LABELS:
            raise ValueError(f"unknown label {label!r} (known: {', '.join(LABELS)})")
        self.label = label
        if label == "vip":
            if not isinstance(value, bool):
                raise ValueError("must be true or false")
            self.wanted = value
            return
        self.read = _READ[label]
        self.pattern = glob(_severities(value) if label == "severity" else _names(value))

    def hits(self, labels: Any) -> list[str]:
        """The label's values that match, in order (for a rule's reasons); a blank is none."""
        pattern = self.pattern
        return [v for v in self.read(labels) if v and pattern.fullmatch(v)]

    def __call__(self, labels: Any) -> bool:
        if self.label == "vip":
            return bool(labels.vip) == self.wanted
        pattern = self.pattern
        return any(v and pattern.fullmatch(v) for v in self.read(labels))


def respelled(spec: Mapping[str, Any], place: str) -> dict[str, Any]:
    """``spec`` with the old spellings of ``place`` (a key of RESPELLED) made labels;
    ValueError when two keys name one label."""
    found: dict[str, Any] = {}
    for key, value in spec.items():
        label = RESPELLED[place].get(key, key)
        if label in found:
            raise ValueError(f"{label} is given twice")
        found[label] = value
    return found


def compile_matcher(spec: Mapping[str, Any]) -> Callable[[Any], bool]:
    """A predicate over one labels object: true when every label in ``spec`` matches (no
    labels: every post). Keys are labels; a None value is left out, as if not written."""
    parts = [LabelMatch(label, value) for label, value in spec.items() if value is not None]
    return lambda labels: all(part(labels) for part in parts)
