"""The SQL of tracked complaint themes ("fix everything twice", ``monitor.themes``): the
complaint posts of cases to group, the themes and their links to cases, counts per period,
and marking a theme fixed. No grouping here, and no rule of what a trend is: only rows.

A link (``case_themes``) is one case and one theme; its ``post_id`` is the case's latest
complaint post of that theme, and that post's time is when the case "came" for the theme:
what the counts per period and "back after the fix" read.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import and_, func, or_, select
from sqlalchemy.engine import Connection, Engine

from monitor.store.rows import insert_ignoring
from monitor.store.schema import case_posts, case_themes, cases, flags, meta, posts, scores, themes
from monitor.store.storms import WRITTEN

COMPLAINT = 0.5  # the scorer's own threshold: a post whose complaint signal reaches it
TRACKED_AT = "themes_tracked_at"  # meta key: when themes were last tracked (ISO, UTC)

_came_at = func.coalesce(posts.c.published_at, case_themes.c.linked_at)
"""When a linked case came for its theme: its latest complaint post's time (the link's own
time if that post is gone)."""


@dataclass(frozen=True)
class Link:
    """A case found in a theme, by one of its complaint posts."""

    case_id: int
    post_id: int
    at: datetime  # the post's publication time


@dataclass(frozen=True)
class FoundTheme:
    """One theme as a tracking run found it: what to upsert."""

    key: str
    label: str
    links: tuple[Link, ...]


class ThemeQueries:
    """Mixed into Store."""

    engine: Engine

    # --- tracking ----------------------------------------------------------------------------

    def complaint_posts(self, start: datetime, end: datetime) -> list[dict[str, Any]]:
        """Posts published in [start, end) that are in a case and read as a complaint: the
        scorer's complaint signal reaches ``COMPLAINT``, or its flag's category is not
        "praise" (a case is opened by a flag; praise is filed too, and is no complaint)."""
        query = (select(case_posts.c.case_id, posts.c.id.label("post_id"), posts.c.title,
                        posts.c.text, posts.c.published_at)
                 .join(case_posts, case_posts.c.post_id == posts.c.id)
                 .outerjoin(scores, scores.c.post_id == posts.c.id)
                 .outerjoin(flags, flags.c.post_id == posts.c.id)
                 .where(posts.c.published_at >= start, posts.c.published_at < end, WRITTEN,
                        or_(scores.c.complaint >= COMPLAINT,
                            and_(flags.c.post_id.is_not(None),
                                 func.coalesce(flags.c.category, "") != "praise")))
                 .order_by(posts.c.published_at, posts.c.id))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def themes_of_cases(self, case_ids: Sequence[int]) -> dict[int, set[str]]:
        """``{case id: theme keys}`` for the cases already linked: a group found again under
        other words keeps its theme through the cases it shares with it."""
        found: dict[int, set[str]] = {}
        with self.engine.connect() as db:
            for start in range(0, len(case_ids), 500):  # bound the IN list
                chunk = list(case_ids[start:start + 500])
                for case_id, key in db.execute(select(case_themes.c.case_id, case_themes.c.theme)
                                               .where(case_themes.c.case_id.in_(chunk))):
                    found.setdefault(case_id, set()).add(key)
        return found

    def save_themes(self, found: Sequence[FoundTheme], now: datetime) -> int:
        """Upsert ``found`` in one transaction: a theme's label is its latest, its first and
        last seen times widen; a link points at the case's latest post of the theme. Returns
        the links made or moved. Safe to run twice, or from two monitors at once."""
        changed = 0
        with self.engine.begin() as db:
            for theme in found:
                times = [link.at for link in theme.links]
                first, last = min(times, default=now), max(times, default=now)
                db.execute(insert_ignoring(db, themes, ["key"]).values(
                    key=theme.key, label=theme.label, first_seen_at=first, last_seen_at=last))
                row = db.execute(select(themes).where(themes.c.key == theme.key)).one()
                db.execute(themes.update().where(themes.c.key == theme.key).values(
                    label=theme.label, first_seen_at=min(row.first_seen_at, first),
                    last_seen_at=max(row.last_seen_at, last)))
                for link in theme.links:
                    changed += _link(db, theme.key, link, now)
            db.execute(insert_ignoring(db, meta, ["key"]).values(key=TRACKED_AT, value=""))
            db.execute(meta.update().where(meta.c.key == TRACKED_AT)
                       .values(value=now.isoformat()))
        return changed

    def themes_tracked_at(self) -> datetime | None:
        """When themes were last tracked (None: never)."""
        with self.engine.connect() as db:
            value = db.execute(select(meta.c.value).where(meta.c.key == TRACKED_AT)).scalar()
        return datetime.fromisoformat(value) if value else None

    # --- reading -----------------------------------------------------------------------------

    def list_themes(self) -> list[dict[str, Any]]:
        """Every theme row, with ``cases``: how many cases it is linked to."""
        count = (select(case_themes.c.theme, func.count().label("cases"))
                 .group_by(case_themes.c.theme).subquery())
        query = (select(themes, func.coalesce(count.c.cases, 0).label("cases"))
                 .outerjoin(count, count.c.theme == themes.c.key)
                 .order_by(themes.c.last_seen_at.desc(), themes.c.key))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def get_theme(self, key: str) -> dict[str, Any] | None:
        with self.engine.connect() as db:
            row = db.execute(select(themes).where(themes.c.key == key)).first()
        return None if row is None else dict(row._mapping)

    def theme_counts(self, start: datetime, end: datetime) -> dict[str, int]:
        """``{theme key: cases}`` of the cases that came for each theme in [start, end)."""
        query = (select(case_themes.c.theme, func.count())
                 .outerjoin(posts, posts.c.id == case_themes.c.post_id)
                 .where(_came_at >= start, _came_at < end).group_by(case_themes.c.theme))
        with self.engine.connect() as db:
            return {key: int(n) for key, n in db.execute(query)}

    def themes_back(self) -> dict[str, int]:
        """``{theme key: cases}`` of each theme marked fixed: the cases that came for it after
        it was marked (none: not in the result)."""
        query = (select(case_themes.c.theme, func.count())
                 .join(themes, themes.c.key == case_themes.c.theme)
                 .outerjoin(posts, posts.c.id == case_themes.c.post_id)
                 .where(themes.c.fixed_at.is_not(None), _came_at > themes.c.fixed_at)
                 .group_by(case_themes.c.theme))
        with self.engine.connect() as db:
            return {key: int(n) for key, n in db.execute(query)}

    def theme_cases(self, key: str) -> list[dict[str, Any]]:
        """The cases of a theme, latest first: id, state, severity, assignee, and the linked
        post (url, title, text, author, source, ``at``)."""
        query = (select(cases.c.id, cases.c.state, cases.c.severity, cases.c.assignee,
                        posts.c.url, posts.c.title, posts.c.text, posts.c.author,
                        posts.c.source, _came_at.label("at"))
                 .select_from(case_themes)
                 .join(cases, cases.c.id == case_themes.c.case_id)
                 .outerjoin(posts, posts.c.id == case_themes.c.post_id)
                 .where(case_themes.c.theme == key).order_by(_came_at.desc(), cases.c.id.desc()))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def themes_of_case(self, case_id: int) -> list[dict[str, Any]]:
        """The themes a case is linked to, with ``at`` (when it came for each) and
        ``back``: the theme was marked fixed before that."""
        query = (select(themes, _came_at.label("at"))
                 .join(case_themes, case_themes.c.theme == themes.c.key)
                 .outerjoin(posts, posts.c.id == case_themes.c.post_id)
                 .where(case_themes.c.case_id == case_id).order_by(themes.c.label))
        with self.engine.connect() as db:
            rows = [dict(r._mapping) for r in db.execute(query)]
        return [{**r, "back": r["fixed_at"] is not None and r["at"] > r["fixed_at"]}
                for r in rows]

    # --- marking fixed -----------------------------------------------------------------------

    def fix_theme(self, key: str, fixed_in: str, note: str | None, by: str | None,
                  now: datetime) -> bool:
        """Mark a theme fixed in a version or on a date; False when there is no such theme."""
        with self.engine.begin() as db:
            return bool(db.execute(themes.update().where(themes.c.key == key).values(
                fixed_at=now, fixed_in=fixed_in, fixed_note=note, fixed_by=by)).rowcount)

    def unfix_theme(self, key: str) -> bool:
        """Take back a theme's fix (it was not); False when there is no such theme."""
        with self.engine.begin() as db:
            return bool(db.execute(themes.update().where(themes.c.key == key).values(
                fixed_at=None, fixed_in=None, fixed_note=None, fixed_by=None)).rowcount)


def _link(db: Connection, key: str, link: Link, now: datetime) -> int:
    """Link a case to a theme, or move its link to a later post; 1 when something changed."""
    if db.execute(insert_ignoring(db, case_themes, ["case_id", "theme"]).values(
            case_id=link.case_id, theme=key, post_id=link.post_id, linked_at=now)).rowcount:
        return 1
    current = (select(posts.c.published_at).where(posts.c.id == case_themes.c.post_id)
               .scalar_subquery())
    moved = db.execute(case_themes.update().where(
        case_themes.c.case_id == link.case_id, case_themes.c.theme == key,
        or_(case_themes.c.post_id.is_(None), current < link.at)).values(post_id=link.post_id))
    return int(bool(moved.rowcount))
