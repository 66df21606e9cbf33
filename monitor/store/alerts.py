"""Queries behind the monitor's alerts about itself (``monitor.alarms``): which alerts exist,
which notifications died, when the last pass ended, and the recent alerts for ``status``."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from monitor.store.schema import deliveries, flags, posts, runs
from monitor.store.storms import SYSTEM


class AlertQueries:
    """Mixed into Store."""

    engine: Engine

    def alert_keys(self, source: str) -> set[str]:
        """The ids of the alerts filed under ``source`` (stored and flagged): one per episode,
        so an episode already alerted is never alerted again."""
        with self.engine.connect() as db:
            return set(db.execute(select(posts.c.external_id)
                                  .join(flags, flags.c.post_id == posts.c.id)
                                  .where(posts.c.source == source)).scalars())

    def dead_batches(self) -> list[dict[str, Any]]:
        """Each notification that died (one per receiver and batch), with its post count,
        attempts and last error; notifications of alerts themselves are left out, so a dead
        admins' receiver cannot alert about itself forever."""
        query = (select(deliveries.c.batch_key, deliveries.c.receiver, deliveries.c.group_key,
                        func.count().label("posts"),
                        func.max(deliveries.c.attempts).label("attempts"),
                        func.max(deliveries.c.last_error).label("last_error"),
                        func.min(deliveries.c.created_at).label("created_at"))
                 .join(posts, posts.c.id == deliveries.c.post_id)
                 .where(deliveries.c.state == "dead", deliveries.c.batch_key.is_not(None),
                        ~SYSTEM)
                 .group_by(deliveries.c.batch_key, deliveries.c.receiver,
                           deliveries.c.group_key)
                 .order_by(func.min(deliveries.c.id)))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]

    def last_pass_at(self) -> datetime | None:
        """When the latest pass (a cron run, or one daemon job) ended."""
        with self.engine.connect() as db:
            return db.execute(select(func.max(runs.c.finished_at)).where(runs.c.ended)).scalar()

    def unended_pass_since(self, since: datetime | None) -> tuple[datetime, dict] | None:
        """The latest pass that has not ended (still going, killed, or its store failed), if
        it started after ``since`` (the last pass that ended): when it started, and who made
        it (``passlock.pass_owner``; empty for a pass of an older release)."""
        query = select(runs.c.started_at, runs.c.report).where(~runs.c.ended)
        if since is not None:
            query = query.where(runs.c.started_at > since)
        with self.engine.connect() as db:
            row = db.execute(query.order_by(runs.c.started_at.desc()).limit(1)).first()
        return None if row is None else (row.started_at, (row.report or {}).get("by") or {})

    def recent_alerts(self, since: datetime, limit: int = 20) -> list[dict[str, Any]]:
        """The alerts raised since ``since``, newest first."""
        query = (select(posts.c.external_id, posts.c.title, posts.c.text, flags.c.severity,
                        flags.c.tags, flags.c.flagged_at)
                 .join(flags, flags.c.post_id == posts.c.id)
                 .where(SYSTEM, flags.c.flagged_at >= since)
                 .order_by(flags.c.flagged_at.desc(), posts.c.id.desc()).limit(limit))
        with self.engine.connect() as db:
            return [dict(r._mapping) for r in db.execute(query)]
