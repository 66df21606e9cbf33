"""Plain, frozen data passed between the stages. Imports nothing of ours.

Each arrow in the flow (collector -> store -> scorer -> rules -> queue) is a function call
on these values, so a stage can be tested without any other stage.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import MISSING, dataclass, field, fields
from datetime import UTC, datetime
from enum import StrEnum
from typing import Any

Cursor = Mapping[str, Any]
"""What a collector remembers between passes (JSON-able); its shape is the collector's own."""



class Severity(StrEnum):
    """How likely a person is needed, lowest first. Members equal their names as stored
    ("high" == Severity.HIGH), but compare by this order, not alphabetically."""

    LOW = "low"
    MEDIUM = "medium"
    HIGH = "high"
    CRITICAL = "critical"

    @property
    def rank(self) -> int:
        return _RANK[self]

    def __lt__(self, other: object) -> bool:
        return self.rank < Severity(other).rank

    def __le__(self, other: object) -> bool:
        return self.rank <= Severity(other).rank

    def __gt__(self, other: object) -> bool:
        return self.rank > Severity(other).rank

    def __ge__(self, other: object) -> bool:
        return self.rank >= Severity(other).rank

    @classmethod
    def highest(cls, severities: Iterable[str]) -> Severity:
        """The most urgent of ``severities`` (ValueError names an unknown one)."""
        return max(map(cls, severities))


_RANK = {severity: rank for rank, severity in enumerate(Severity)}
SEVERITIES = tuple(s.value for s in Severity)
"""The severities as plain strings, lowest first (for choices and messages)."""

STORM_SOURCE = "event:"
"""A backlash storm is stored as a post of the source ``event:<event name>``: flagged by the
storm detector, never by the rules, and never counted as something someone wrote."""

SYSTEM_SOURCE = "system:"
"""The monitor's alerts about itself (a broken source, a dead delivery, a stalled daemon) are
stored as posts of the source ``system:<what>``, flagged with the category ``system``: routed
like any flag, but never a case for staff and never counted as something someone wrote."""

QUEUE = "queue"
"""The receiver name that means the outreach queue: a case, never a notification."""


def is_storm_source(source: str) -> bool:
    """Whether posts of ``source`` are storms (``STORM_SOURCE``), not something someone wrote."""
    return source.startswith(STORM_SOURCE)


def is_system_source(source: str) -> bool:
    """Whether posts of ``source`` are the monitor's alerts about itself (``SYSTEM_SOURCE``)."""
    return source.startswith(SYSTEM_SOURCE)


EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)
"""The earliest date a post or a launch may have; an earlier one is read as this."""
LATEST = datetime(2200, 1, 1, tzinfo=UTC)
"""No date is this late or later; a later one is read as this."""


@dataclass(frozen=True, slots=True)
class Post:
    """One thing someone wrote in public. Its strings are valid Unicode (see ``__post_init__``)."""

    source: str
    external_id: str
    url: str
    author: str | None
    title: str | None
    text: str
    published_at: datetime
    thread_id: str | None = None   # the thread (topic, submission, blog post) it belongs to
    parent_id: str | None = None   # what it answers; set for every reply, None for an opener
    reach: int | None = None

    def __post_init__(self) -> None:
        """A lone surrogate (a JSON API's broken escape, such as "\\ud800") becomes U+FFFD
        here, where every source's posts pass, so neither PostgreSQL nor the scorer's hashing
        (both UTF-8) fails on one post and takes the pass down with it. So does a date no
        post can have (year 1, year 9999: a hostile feed's or a broken dump's), which would
        overflow once shown in a time zone or counted back from: it is kept within
        EARLIEST..LATEST."""
        if not EARLIEST <= self.published_at < LATEST:
            object.__setattr__(self, "published_at",
                               EARLIEST if self.published_at < EARLIEST else LATEST)
        for name in _POST_STRINGS:
            value = getattr(self, name)
            if value is not None and not value.isascii() and _SURROGATE.search(value):
                object.__setattr__(self, name, _SURROGATE.sub("\ufffd", value))

    @property
    def is_reply(self) -> bool:
        """A comment or reply (it has a parent): its title is the thread's, not its author's."""
        return self.parent_id is not None


_POST_STRINGS = tuple(f.name for f in fields(Post) if f.type in ("str", "str | None"))
_SURROGATE = re.compile("[\ud800-\udfff]")


@dataclass(frozen=True, slots=True)
class Fetch:
    """What one collection of one source produced.

    A bad entry is a *problem* (logged, skipped); the fetch as a whole only fails by raising
    SourceError. ``unchanged`` means the source answered "nothing new" (304, same body).
    """

    posts: tuple[Post, ...]
    cursor: Cursor | None
    problems: tuple[str, ...] = ()
    unchanged: bool = False


def _shown(default: Any = MISSING, **about: str) -> Any:
    """A Score field that every summary of a score shows (the webhook body, the digest, the
    CSVs); ``signal=...`` also makes it a 0..1 signal (``monitor score``'s "signals")."""
    return field(default=default, metadata={"shown": True, **about})


@dataclass(frozen=True, slots=True)
class Score:
    """What the scorer found in a post: VADER's numbers plus our own signals.

    ``anger``, ``change``, ``churn`` and ``complaint`` run 0..1; ``angry`` is our verdict that
    the writer is angry, ``complaint`` >= 0.5 that the post reports a problem. ``evidence``
    holds (signal, phrase) pairs a person can read: ("anger", "4 words in
    capitals"), ("churn", "says 'cancel my subscription'"). VADER knows only English: for a
    post in another language the four VADER numbers are 0 and ``sentiment_known`` is False.

    A new field is stored, exported and shown by declaring it here (``_shown`` to show it in
    summaries; ``signal=`` also makes it a rule condition) and adding its column in
    ``store/schema.py``; the scorer computes it. The rest reads ``fields(Score)``.
    """

    compound: float = _shown()
    pos: float
    neu: float
    neg: float
    anger: float = _shown(0.0, signal="how angry; 0.5 or more exactly when angry")
    change: float = _shown(0.0, signal="talk about a change to the product")
    churn: float = _shown(0.0, signal="a threat to leave")
    complaint: float = _shown(0.0, signal="a problem report; 0.5 or more when the post "
                                          "reports a problem")
    angry: bool = _shown(False)
    language: str | None = _shown(None)  # ISO 639-1 code; None when too short to tell
    worst_sentence: str | None = None    # the most negative sentence of a long post
    truncated: bool = False
    evidence: tuple[tuple[str, str], ...] = ()
    model: str | None = None  # which models made it: "shipped", "learned:<id>" (monitor.learn)

    @property
    def sentiment_known(self) -> bool:
        return self.language in (None, "en")

    def shown(self) -> dict[str, Any]:
        """The fields every summary shows, in order (see ``_shown``)."""
        return {name: getattr(self, name) for name in SHOWN}

    def signals(self) -> dict[str, float]:
        return {name: getattr(self, name) for name in SIGNALS}


SHOWN = tuple(f.name for f in fields(Score) if f.metadata.get("shown"))
SIGNALS = {f.name: f.metadata["signal"] for f in fields(Score) if "signal" in f.metadata}
"""The 0..1 signals, each with what it measures (a rule condition of the same name)."""


def is_praise(severity: str, category: str | None, tags: Iterable[str]) -> bool:
    """Praise to pass on (rules/praise.yaml), not a post someone must answer: category or
    tag ``praise``, unless a rule also found it high or critical. The one rule of what
    "flagged" leaves out, for a flag (``Flag.praise``) or a stored flag's row."""
    return (category == "praise" or "praise" in tags) and severity in ("low", "medium")


@dataclass(frozen=True, slots=True)
class Flag:
    """Why a post needs a person: the rules that matched and, for each, a sentence."""

    severity: str
    rules: tuple[str, ...]
    reasons: tuple[str, ...]
    category: str | None = None
    tags: tuple[str, ...] = field(default=())

    @property
    def praise(self) -> bool:
        return is_praise(self.severity, self.category, self.tags)

    @property
    def needs_person(self) -> bool:
        """What "flagged" means to the team: every flag but praise."""
        return not self.praise


@dataclass(frozen=True, slots=True)
class FlaggedPost:
    """A flagged post: the one shape it has from the rules to the receivers (``id``: the
    stored post's, once it is stored)."""

    post: Post
    score: Score
    flag: Flag
    id: int | None = None


@dataclass(frozen=True, slots=True)
class Notice:
    """One notification for one receiver: the flagged posts of one group (a thread, or an
    author) that arrived within ``group_wait``, with the case they belong to.

    ``key`` is stable across retries (the outbox row's key), so a receiver can pass it on as an
    idempotency key (a webhook header, an e-mail Message-ID). ``reminder``: an untouched
    critical case is being repeated (``repeat_interval``), not new posts.
    """

    key: str
    receiver: str
    group: str
    items: tuple[FlaggedPost, ...]
    case_id: int | None = None
    reminder: bool = False

    @property
    def severity(self) -> str:
        """The highest severity among the items."""
        return Severity.highest(i.flag.severity for i in self.items).value


@dataclass(frozen=True, slots=True)
class Routing:
    """Where a newly flagged post goes (decided by the route tree): its receivers, the group
    it is notified with, how long a group waits for more posts, and whether a silence mutes it.
    """

    receivers: tuple[str, ...]
    group_key: str
    group_wait: float = 0.0
    silenced: bool = False
    vip: bool = False
    folded_into: int | None = None  # an open storm's case: notices held back (inhibited)
