"""The team's labels and the models learned from them (``monitor learn``), as rows.

A label is one verdict of a person on one post and one signal (complaint, anger): written by
the case command that gave it, in that command's transaction (``record_labels``). A learned
model is .npz bytes in ``models``, beside every other row of the store, so each daemon on one
PostgreSQL uses the same one; at most one is active per signal and language, and none active
means the shipped model.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.engine import Connection, Engine

from monitor.store.schema import case_posts, labels, models, posts, scores


@dataclass(frozen=True, slots=True)
class TeamLabel:
    """The latest verdict on one post and signal, with the words the scorer read."""

    post_id: int
    signal: str
    value: bool
    language: str | None
    text: str          # title and text as the scorer reads them (a reply's title left out)


@dataclass(frozen=True, slots=True)
class StoredModel:
    id: int
    signal: str
    language: str
    data: bytes
    report: dict[str, Any]
    created_at: datetime
    created_by: str | None
    active: bool


def record_labels(db: Connection, post_ids: Iterable[int], values: Mapping[str, bool], *,
                  origin: str, case_id: int | None, actor: str | None, now: datetime) -> None:
    """One label per post and signal of ``values`` (in the caller's transaction)."""
    rows = [{"post_id": p, "signal": s, "value": v, "origin": origin, "case_id": case_id,
             "actor": actor, "at": now} for p in post_ids for s, v in values.items()]
    if rows:
        db.execute(labels.insert(), rows)


def case_post_scores(db: Connection, case_id: int) -> list[Any]:
    """(post_id, angry, complaint) of each post of a case, as last scored (what the monitor
    said about it, which a verdict confirms or contradicts)."""
    return list(db.execute(
        select(case_posts.c.post_id, scores.c.angry, scores.c.complaint)
        .outerjoin(scores, scores.c.post_id == case_posts.c.post_id)
        .where(case_posts.c.case_id == case_id).order_by(case_posts.c.post_id)))


def post_by_url(db: Connection, url: str) -> Any:
    """(id, case_id) of the stored post at ``url`` (the latest stored, if several), or None."""
    return db.execute(
        select(posts.c.id, case_posts.c.case_id)
        .outerjoin(case_posts, case_posts.c.post_id == posts.c.id)
        .where(posts.c.url == url).order_by(posts.c.id.desc()).limit(1)).first()


class LearnQueries:
    """Labels and learned models, mixed into Store (uses ``self.engine``)."""

    engine: Engine

    def team_labels(self) -> list[TeamLabel]:
        """Every post's latest verdict per signal (a later one overrides: a dismissed case
        reopened and confirmed is a complaint), with the scored language and text."""
        query = (select(labels.c.post_id, labels.c.signal, labels.c.value, posts.c.title,
                        posts.c.text, posts.c.parent_id, scores.c.language)
                 .join(posts, posts.c.id == labels.c.post_id)
                 .outerjoin(scores, scores.c.post_id == labels.c.post_id)
                 .where(posts.c.pruned_at.is_(None))  # its text is gone (monitor prune)
                 .order_by(labels.c.id))
        latest: dict[tuple[int, str], TeamLabel] = {}
        with self.engine.connect() as db:
            for r in db.execute(query):
                title = None if r.parent_id is not None else r.title
                latest[(r.post_id, r.signal)] = TeamLabel(
                    r.post_id, r.signal, bool(r.value), r.language,
                    f"{title}\n{r.text}" if title else r.text)
        return list(latest.values())

    def post_labels(self, post_id: int) -> list[dict[str, Any]]:
        """A post's labels, oldest first (what the team said, and how)."""
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(
                select(labels).where(labels.c.post_id == post_id).order_by(labels.c.id))]

    def active_models(self) -> dict[tuple[str, str], StoredModel]:
        """(signal, language) -> the learned model in use there."""
        with self.engine.connect() as db:
            rows = db.execute(select(models).where(models.c.active.is_(True)))
            return {(r.signal, r.language): _model(r) for r in rows}

    def models_mark(self) -> tuple[int, ...]:
        """The active models' ids: cheap to ask every few seconds, and it changes exactly
        when ``learn`` installs or ``--undo`` goes back."""
        with self.engine.connect() as db:
            return tuple(db.execute(select(models.c.id).where(models.c.active.is_(True))
                                    .order_by(models.c.id)).scalars())

    def learned_models(self, signal: str, language: str) -> list[StoredModel]:
        """Every model learned for ``signal`` in ``language``, newest first."""
        with self.engine.connect() as db:
            return [_model(r) for r in db.execute(
                select(models).where(models.c.signal == signal, models.c.language == language)
                .order_by(models.c.id.desc()))]

    def install_model(self, signal: str, language: str, data: bytes, report: dict[str, Any],
                      *, now: datetime, actor: str | None) -> int:
        """Store a model and make it the active one of its signal and language."""
        with self.engine.begin() as db:
            db.execute(update(models).where(models.c.signal == signal,
                                            models.c.language == language)
                       .values(active=False))
            return int(db.execute(models.insert().values(
                signal=signal, language=language, data=data, report=report, created_at=now,
                created_by=actor, active=True)).inserted_primary_key[0])

    def undo_model(self, signal: str, language: str) -> tuple[int | None, int | None] | None:
        """Go back one model: deactivate the active one and activate the one learned before
        it (none: the shipped model). (undone id, now active id or None), or None when the
        shipped model is in use already."""
        with self.engine.begin() as db:
            current = db.execute(select(models.c.id).where(
                models.c.signal == signal, models.c.language == language,
                models.c.active.is_(True)).with_for_update()).scalar()
            if current is None:
                return None
            before = db.execute(select(models.c.id).where(
                models.c.signal == signal, models.c.language == language,
                models.c.id < current).order_by(models.c.id.desc()).limit(1)).scalar()
            db.execute(update(models).where(models.c.id == current).values(active=False))
            if before is not None:
                db.execute(update(models).where(models.c.id == before).values(active=True))
            return current, before


def _model(row: Any) -> StoredModel:
    return StoredModel(row.id, row.signal, row.language, bytes(row.data), row.report,
                       row.created_at, row.created_by, bool(row.active))
