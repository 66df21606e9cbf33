"""Plain, frozen data passed between the stages. Imports nothing of ours.

Each arrow in the flow (collector -> store -> scorer -> rules -> queue) is a function call
on these values, so a stage can be tested without any other stage.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

Cursor = Mapping[str, Any]
"""What a collector remembers between passes (JSON-able); its shape is the collector's own."""

SEVERITIES = ("low", "medium", "high", "critical")


@dataclass(frozen=True, slots=True)
class Post:
    """One thing someone wrote in public."""

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

    @property
    def is_reply(self) -> bool:
        """A comment or reply (it has a parent): its title is the thread's, not its author's."""
        return self.parent_id is not None


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


@dataclass(frozen=True, slots=True)
class Score:
    """VADER's four numbers for a post; ``truncated`` says only a prefix was scored."""

    compound: float
    pos: float
    neu: float
    neg: float
    truncated: bool = False


@dataclass(frozen=True, slots=True)
class Flag:
    """Why a post needs a person: the rules that matched and, for each, a sentence."""

    severity: str
    rules: tuple[str, ...]
    reasons: tuple[str, ...]
    category: str | None = None
    tags: tuple[str, ...] = field(default=())
