"""The tables and the migrations between schema versions. Plain SQLAlchemy Core."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    Column,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Table,
    Text,
    TypeDecorator,
    UniqueConstraint,
    false,
    true,
)

SCHEMA_VERSION = 10


class UTCDateTime(TypeDecorator[datetime]):
    """Stored as naive UTC everywhere, read back as timezone-aware UTC."""

    impl = DateTime
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Any) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to the store")
        return value.astimezone(UTC).replace(tzinfo=None)

    def process_result_value(self, value: datetime | None, dialect: Any) -> datetime | None:
        return None if value is None else value.replace(tzinfo=UTC)


metadata = MetaData()

meta = Table("meta", metadata, Column("key", String(64), primary_key=True),
             Column("value", Text, nullable=False))

sources = Table(
    "sources", metadata,
    Column("name", String(200), primary_key=True),
    Column("kind", String(64), nullable=False),
    Column("cursor", JSON),
    Column("last_attempt_at", UTCDateTime),
    Column("last_success_at", UTCDateTime),
    Column("last_new_at", UTCDateTime),
    Column("last_error", Text),
    Column("last_error_at", UTCDateTime),
    Column("failures", Integer, nullable=False, default=0),
    # schema 4: several daemons on one PostgreSQL; a source is polled by its lease holder
    Column("leased_by", String(200)),
    Column("leased_until", UTCDateTime),
)

posts = Table(
    "posts", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("source", String(200), nullable=False, index=True),
    Column("external_id", String(1000), nullable=False),
    Column("url", Text, nullable=False),
    Column("author", Text),
    Column("title", Text),
    Column("text", Text, nullable=False),
    Column("published_at", UTCDateTime, nullable=False, index=True),
    Column("first_seen_at", UTCDateTime, nullable=False, index=True),
    Column("changed_at", UTCDateTime, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("version", Integer, nullable=False, default=1),
    Column("thread_id", Text),
    Column("parent_id", Text),
    Column("reach", Integer),
    # schema 10: history brought in by `monitor import` (never filed as cases by a rescore),
    # and old posts whose text and author `monitor prune` dropped (their figures stay)
    Column("imported_at", UTCDateTime),
    Column("pruned_at", UTCDateTime),
    UniqueConstraint("source", "external_id", name="uq_posts_source_external_id"),
    # schema 8: a case page shows its author's history on the source
    Index("ix_posts_source_author", "source", "author"),
)

post_edits = Table(
    "post_edits", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("version", Integer, nullable=False),
    Column("title", Text),
    Column("text", Text, nullable=False),
    Column("content_hash", String(64), nullable=False),
    Column("replaced_at", UTCDateTime, nullable=False),
)

scores = Table(
    "scores", metadata,
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("content_hash", String(64), nullable=False),
    Column("compound", Float, nullable=False),
    Column("pos", Float, nullable=False),
    Column("neu", Float, nullable=False),
    Column("neg", Float, nullable=False),
    Column("truncated", Boolean, nullable=False, default=False),
    Column("scored_at", UTCDateTime, nullable=False),
    # schema 2: our own signals
    Column("anger", Float, nullable=False, server_default="0"),
    Column("change", Float, nullable=False, server_default="0"),
    Column("churn", Float, nullable=False, server_default="0"),
    Column("angry", Boolean, nullable=False, server_default=false()),
    Column("language", String(16)),
    Column("worst_sentence", Text),
    Column("evidence", JSON),
    # schema 5: the complaint signal
    Column("complaint", Float, nullable=False, server_default="0"),
    # schema 9: which model made the score ("shipped", or a learned model "learned:<id>")
    Column("model", String(64)),
)

flags = Table(
    "flags", metadata,
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("severity", String(16), nullable=False),
    Column("category", String(100)),
    Column("rules", JSON, nullable=False),
    Column("reasons", JSON, nullable=False),
    Column("tags", JSON, nullable=False),
    Column("flagged_at", UTCDateTime, nullable=False, index=True),
    Column("updated_at", UTCDateTime, nullable=False),
)

cases = Table(  # one per thread (or author) that needs a person: the outreach queue
    "cases", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False,
           unique=True),                                   # the post that opened it
    Column("state", String(16), nullable=False, default="new"),
    Column("severity", String(16), nullable=False),
    Column("opened_at", UTCDateTime, nullable=False, index=True),
    Column("updated_at", UTCDateTime, nullable=False),
    # schema 3: the outreach queue
    Column("group_key", String(300), index=True),          # "thread:<source>:<thread id>"
    Column("category", String(100)),
    Column("priority", Float, nullable=False, server_default="0"),
    Column("assignee", String(100)),
    Column("due_at", UTCDateTime),
    Column("first_response_at", UTCDateTime),
    Column("resolved_at", UTCDateTime),
    Column("reason", Text),                                # why it was dismissed
    Column("reminded_at", UTCDateTime),
    # schema 8: the inbox lists open cases by priority, and by assignee
    Index("ix_cases_state_priority", "state", "priority"),
    Index("ix_cases_assignee", "assignee"),
)
# schema 8: the inbox's order within a state (``monitor.store.web``: one read per state, each
# stopping at the page's end instead of sorting every open case), within a person's (or
# nobody's) cases of a state ("Mine", "Unassigned critical"), and within a state's unanswered
# cases ("Overdue")
Index("ix_cases_inbox", cases.c.state, cases.c.priority.desc(), cases.c.due_at.is_(None),
      cases.c.due_at, cases.c.id)
Index("ix_cases_assignee_inbox", cases.c.assignee, cases.c.state, cases.c.priority.desc(),
      cases.c.due_at.is_(None), cases.c.due_at, cases.c.id)
Index("ix_cases_unanswered", cases.c.state, cases.c.first_response_at, cases.c.priority.desc(),
      cases.c.due_at.is_(None), cases.c.due_at, cases.c.id)

case_posts = Table(  # the flagged posts of a case (a post is in at most one case)
    "case_posts", metadata,
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), primary_key=True),
    Column("added_at", UTCDateTime, nullable=False),
)

case_events = Table(  # every change to a case: who, when, what
    "case_events", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("at", UTCDateTime, nullable=False),
    Column("actor", String(100)),                          # None: the monitor itself
    Column("action", String(32), nullable=False),          # opened, assigned, note, ...
    Column("detail", JSON),
)

people = Table(  # the outreach team's runtime state: away/back, and whose turn it is
    "people", metadata,
    Column("name", String(100), primary_key=True),
    Column("away", Boolean),                               # None: as config.yaml says
    Column("last_auto_event", Integer),                    # case_events.id of their last
    Column("updated_at", UTCDateTime, nullable=False),     # automatic assignment
)

deliveries = Table(  # the outbox: written with the flag, marked sent after sending
    "deliveries", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("key", String(200), nullable=False, unique=True),  # "flag:<post id>:<receiver>"
    Column("receiver", String(100), nullable=False),
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE")),
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="SET NULL")),
    Column("group_key", String(300), nullable=False),
    Column("state", String(16), nullable=False, index=True),  # pending, sent, dead, silenced
    Column("attempts", Integer, nullable=False, default=0),
    Column("next_attempt_at", UTCDateTime, nullable=False),
    Column("claimed_until", UTCDateTime),                  # a sender holds it until then
    Column("batch_key", String(200), index=True),          # the notice it was first sent in
    Column("last_error", Text),
    Column("created_at", UTCDateTime, nullable=False),
    Column("sent_at", UTCDateTime),
    # schema 4: a notice held back while a backlash storm case covers it (state inhibited)
    Column("folded_into", Integer),                        # the storm's case id
)

report_sends = Table(  # a report e-mailed once per recipient, whichever daemon sends it
    "report_sends", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("report", String(100), nullable=False),         # "digest:2026-11-23"
    Column("recipient", String(320), nullable=False),
    Column("state", String(16), nullable=False),           # sending, sent, failed
    Column("attempts", Integer, nullable=False, default=0),
    Column("claimed_until", UTCDateTime),
    Column("last_error", Text),
    Column("sent_at", UTCDateTime),
    UniqueConstraint("report", "recipient", name="uq_report_sends_report_recipient"),
)

silences = Table(  # "don't notify about these until then" (a known outage, a troll)
    "silences", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("matchers", JSON, nullable=False),
    Column("reason", Text, nullable=False),
    Column("created_by", String(100)),
    Column("created_at", UTCDateTime, nullable=False),
    Column("ends_at", UTCDateTime, nullable=False, index=True),
)

users = Table(  # schema 7: accounts of the web inbox; disabled, never deleted (history)
    "users", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("name", String(100), nullable=False, unique=True),
    Column("role", String(16), nullable=False),            # staff, lead, admin
    Column("password_hash", Text, nullable=False),         # argon2id, PHC string
    Column("disabled_at", UTCDateTime),
    Column("created_at", UTCDateTime, nullable=False),
    Column("password_changed_at", UTCDateTime, nullable=False),
    Column("failed_logins", Integer, nullable=False, default=0, server_default="0"),  # in a row
    Column("last_failed_at", UTCDateTime),
    Column("last_login_at", UTCDateTime),
)

web_sessions = Table(  # schema 8: who is logged in to the web inbox
    "web_sessions", metadata,
    Column("id", String(64), primary_key=True),            # sha256 of the cookie's token
    Column("user_name", String(100), nullable=False, index=True),
    Column("csrf", String(64), nullable=False),            # sent back with every change
    Column("created_at", UTCDateTime, nullable=False),
    Column("seen_at", UTCDateTime, nullable=False),
    Column("ended_at", UTCDateTime),                       # logged out (or disabled)
)

presence = Table(  # schema 8: who has a case open in the web inbox, and doing what
    "presence", metadata,
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("user_name", String(100), primary_key=True),
    Column("activity", String(16), nullable=False),        # viewing, replying
    Column("seen_at", UTCDateTime, nullable=False, index=True),
)

identities = Table(  # schema 9: an author on a source is a person; staff link their names
    "identities", metadata,
    Column("source", String(200), primary_key=True),
    Column("author", String(300), primary_key=True),
    Column("person", String(520), nullable=False, index=True),  # "source:author" of the first
    Column("linked_by", String(100)),
    Column("linked_at", UTCDateTime, nullable=False),
)

outcomes = Table(  # schema 9: did the answer win them back? one row per responded case
    "outcomes", metadata,
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("outcome", String(16), nullable=False),         # won back, still unhappy, gone
    Column("responded_at", UTCDateTime, nullable=False),   # quiet, too early
    Column("window_ends_at", UTCDateTime, nullable=False),
    Column("decided_at", UTCDateTime),                     # None while too early to say
    Column("evidence", JSON, nullable=False),              # before/after figures, post ids
    Column("updated_at", UTCDateTime, nullable=False),
)

labels = Table(  # schema 9: the team's verdicts on posts, for `monitor learn`
    "labels", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE"), nullable=False,
           index=True),
    Column("signal", String(16), nullable=False),          # complaint, anger
    Column("value", Boolean, nullable=False),              # the post is one, or is not
    Column("origin", String(32), nullable=False),          # dismiss, confirm, severity, flag
    Column("case_id", Integer),
    Column("actor", String(100)),
    Column("at", UTCDateTime, nullable=False),
)

themes = Table(  # schema 9: complaint themes as the team tracks them ("fix everything twice")
    "themes", metadata,
    Column("key", String(200), primary_key=True),          # its words, normalised
    Column("label", Text, nullable=False),
    Column("first_seen_at", UTCDateTime, nullable=False),
    Column("last_seen_at", UTCDateTime, nullable=False),
    Column("fixed_at", UTCDateTime),                       # marked fixed ...
    Column("fixed_in", Text),                              # ... in this version or date
    Column("fixed_note", Text),
    Column("fixed_by", String(100)),
)

case_themes = Table(  # schema 9: which cases a theme comes from
    "case_themes", metadata,
    Column("case_id", Integer, ForeignKey("cases.id", ondelete="CASCADE"), primary_key=True),
    Column("theme", String(200), ForeignKey("themes.key", ondelete="CASCADE"),
           primary_key=True),
    Column("post_id", Integer, ForeignKey("posts.id", ondelete="CASCADE")),
    Column("linked_at", UTCDateTime, nullable=False, index=True),
)

models = Table(  # schema 9: models learned from the team's labels, kept in the store
    "models", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("signal", String(16), nullable=False),          # complaint, anger
    Column("language", String(16), nullable=False),
    Column("data", LargeBinary, nullable=False),           # .npz bytes (no pickle)
    Column("report", JSON, nullable=False),                # before/after figures
    Column("created_at", UTCDateTime, nullable=False),
    Column("created_by", String(100)),
    Column("active", Boolean, nullable=False, server_default=false()),
)

runs = Table(
    "runs", metadata,
    Column("id", Integer, primary_key=True, autoincrement=True),
    Column("started_at", UTCDateTime, nullable=False, index=True),
    Column("finished_at", UTCDateTime, nullable=False, index=True),
    Column("report", JSON, nullable=False),
    # False from the pass's start until it ends: one that never ends was killed, or its store
    # failed (a full disk) where nothing more could be written; `monitor status` says so.
    Column("ended", Boolean, nullable=False, server_default=true()),
)


MIGRATIONS: dict[int, tuple[str, ...]] = {
    # 1 -> 2: the scorer's own signals (old rows keep 0 until `monitor rescore`)
    1: ("ALTER TABLE scores ADD COLUMN anger FLOAT DEFAULT 0 NOT NULL",
        "ALTER TABLE scores ADD COLUMN change FLOAT DEFAULT 0 NOT NULL",
        "ALTER TABLE scores ADD COLUMN churn FLOAT DEFAULT 0 NOT NULL",
        "ALTER TABLE scores ADD COLUMN angry BOOLEAN DEFAULT false NOT NULL",
        "ALTER TABLE scores ADD COLUMN language VARCHAR(16)",
        "ALTER TABLE scores ADD COLUMN worst_sentence TEXT",
        "ALTER TABLE scores ADD COLUMN evidence JSON"),
    # 2 -> 3: the outreach queue (new tables are created before these run)
    2: ("ALTER TABLE cases ADD COLUMN group_key VARCHAR(300)",
        "ALTER TABLE cases ADD COLUMN category VARCHAR(100)",
        "ALTER TABLE cases ADD COLUMN priority FLOAT DEFAULT 0 NOT NULL",
        "ALTER TABLE cases ADD COLUMN assignee VARCHAR(100)",
        "ALTER TABLE cases ADD COLUMN due_at TIMESTAMP",
        "ALTER TABLE cases ADD COLUMN first_response_at TIMESTAMP",
        "ALTER TABLE cases ADD COLUMN resolved_at TIMESTAMP",
        "ALTER TABLE cases ADD COLUMN reason TEXT",
        "ALTER TABLE cases ADD COLUMN reminded_at TIMESTAMP",
        "CREATE INDEX ix_cases_group_key ON cases (group_key)",
        "UPDATE cases SET state = 'new' WHERE state = 'open'",
        "UPDATE cases SET group_key = 'post:' || CAST(post_id AS VARCHAR(20))",
        "UPDATE cases SET category = (SELECT category FROM flags WHERE flags.post_id = "
        "cases.post_id)",
        "INSERT INTO case_posts (case_id, post_id, added_at) SELECT id, post_id, opened_at "
        "FROM cases",
        # severity weight alone (reach is unknown here); due_at stays NULL: never overdue
        "UPDATE cases SET priority = CASE severity WHEN 'critical' THEN 8 WHEN 'high' THEN 4 "
        "WHEN 'medium' THEN 2 ELSE 1 END",
        "INSERT INTO case_events (case_id, at, action) SELECT id, opened_at, 'opened' "
        "FROM cases"),
    # 3 -> 4: source leases, report sends (a new table), storm inhibition
    3: ("ALTER TABLE sources ADD COLUMN leased_by VARCHAR(200)",
        "ALTER TABLE sources ADD COLUMN leased_until TIMESTAMP",
        "ALTER TABLE deliveries ADD COLUMN folded_into INTEGER"),
    # 4 -> 5: the complaint signal (old rows keep 0 until `monitor rescore`)
    4: ("ALTER TABLE scores ADD COLUMN complaint FLOAT DEFAULT 0 NOT NULL",),
    # 5 -> 6: passes recorded from their start, so one that never ended shows
    5: ("ALTER TABLE runs ADD COLUMN ended BOOLEAN DEFAULT true NOT NULL",
        "CREATE INDEX IF NOT EXISTS ix_runs_started_at ON runs (started_at)",
        "CREATE INDEX IF NOT EXISTS ix_runs_finished_at ON runs (finished_at)"),
    # 6 -> 7: accounts (the users table is new: create_all makes it whole, nothing to alter)
    6: (),
    # 7 -> 8: the web inbox's sessions and presence (new tables), and the inbox's order
    7: ("CREATE INDEX IF NOT EXISTS ix_cases_state_priority ON cases (state, priority)",
        "CREATE INDEX IF NOT EXISTS ix_cases_assignee ON cases (assignee)",
        "CREATE INDEX IF NOT EXISTS ix_cases_inbox ON cases "
        "(state, priority DESC, (due_at IS NULL), due_at, id)",
        "CREATE INDEX IF NOT EXISTS ix_cases_assignee_inbox ON cases "
        "(assignee, state, priority DESC, (due_at IS NULL), due_at, id)",
        "CREATE INDEX IF NOT EXISTS ix_cases_unanswered ON cases "
        "(state, first_response_at, priority DESC, (due_at IS NULL), due_at, id)",
        "CREATE INDEX IF NOT EXISTS ix_posts_source_author ON posts (source, author)"),
    # 8 -> 9: closing the loop: identities, outcomes, labels, learned models (new tables),
    # and which model made a score
    8: ("ALTER TABLE scores ADD COLUMN model VARCHAR(64)",),
    # 9 -> 10: imported history and retention
    9: ("ALTER TABLE posts ADD COLUMN imported_at TIMESTAMP",
        "ALTER TABLE posts ADD COLUMN pruned_at TIMESTAMP"),
}
"""Statements that take a store from schema version N to N + 1 (plain SQL both dialects read)."""
