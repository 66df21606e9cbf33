"""Helpers of the web inbox's tests: a project with a store of filed cases, accounts, and a
client that logs in through the real login form."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml
from sqlalchemy import update
from starlette.testclient import TestClient

from monitor import accounts
from monitor import config as configuration
from monitor.model import Fetch, Flag, Post
from monitor.outbox import file_case
from monitor.store import Store
from monitor.store.schema import flags

NOW = datetime(2026, 11, 3, 9, 30, tzinfo=UTC)
PASSWORD = "correct horse battery staple"
TEAM = ("ana", "bo", "lee", "root")
ROLES = {"ana": "staff", "bo": "staff", "lee": "lead", "root": "admin"}


class Clock:
    """The app's clock, moved by the test."""

    def __init__(self, now: datetime = NOW) -> None:
        self.now = now

    def __call__(self) -> datetime:
        return self.now

    def advance(self, **delta: float) -> None:
        self.now += timedelta(**delta)


def project(folder: Path, store_url: str, **extra: Any) -> Path:
    """A project folder whose config names the team and one launch, and a store URL."""
    (folder / "sources").mkdir(parents=True, exist_ok=True)
    (folder / "rules").mkdir(exist_ok=True)
    settings = {"store": store_url, "timezone": "Europe/Berlin",
                "team": [{"name": n} for n in TEAM], "assignment": "none",
                "events": [{"name": "New editor", "date": "2026-11-01",
                            "keywords": ["editor"]}], **extra}
    (folder / "config.yaml").write_text(yaml.safe_dump(settings))
    (folder / "sources" / "blog.yaml").write_text(yaml.safe_dump({"sources": [
        {"name": "forum", "kind": "rss", "url": "http://127.0.0.1:9/feed"}]}))
    return folder / "config.yaml"


def load(path: Path) -> Any:
    return configuration.load(path)


def add_accounts(store: Store) -> None:
    for name, role in ROLES.items():
        accounts.add_user(store, name, role, PASSWORD, NOW - timedelta(days=1))


def file(store: Store, config: Any, external_id: str, *, title: str = "A thread",
         text: str = "It broke", severity: str = "high", author: str | None = "marta",
         url: str | None = None, thread: str | None = None, language: str | None = None,
         tags: tuple[str, ...] = (), now: datetime = NOW, source: str = "forum") -> int:
    """A post saved, flagged and filed as the pipeline does; its case id."""
    post = Post(source=source, external_id=external_id,
                url=url or f"https://forum.test/t/{external_id}", author=author, title=title,
                text=text, published_at=now - timedelta(minutes=5),
                thread_id=thread or external_id)
    store.save_fetch(source, "rss", Fetch((post,), None), now)
    stored = store.stored_post(source, external_id)
    flag = Flag(severity=severity, rules=("r1",), reasons=(f"r1: says {text[:30]!r}",),
                category="backlash")
    with store.engine.begin() as db:
        db.execute(flags.insert().values(post_id=stored.id, severity=severity,
                                         category="backlash", rules=["r1"],
                                         reasons=list(flag.reasons), tags=list(tags),
                                         flagged_at=now, updated_at=now))
        if language:
            from monitor.store.schema import scores

            db.execute(scores.insert().values(post_id=stored.id, content_hash="x", compound=0,
                                              pos=0, neu=1, neg=0, scored_at=now,
                                              language=language))
        return file_case(db, post_id=stored.id, post=post, flag=flag, vip=False, now=now,
                         group_key=f"thread:{source}:{post.thread_id}", policy=config.policy)


def set_due(store: Store, case_id: int, due: datetime) -> None:
    from monitor.store.schema import cases

    with store.engine.begin() as db:
        db.execute(update(cases).where(cases.c.id == case_id).values(due_at=due))


CSRF = re.compile(r'name="csrf" value="([^"]+)"')
SEEN = re.compile(r'name="seen" value="(\d+)"')


def login(app: Any, name: str, password: str = PASSWORD, **client: Any) -> TestClient:
    """A client logged in through the login form (its own CSRF cookie and field)."""
    browser = TestClient(app, follow_redirects=False, **client)
    form = browser.get("/login")
    answer = browser.post("/login", data={"name": name, "password": password,
                                          "csrf": CSRF.search(form.text).group(1), "next": "/"})
    assert answer.status_code == 303, answer.text
    return browser


def tokens(page_html: str) -> dict[str, str]:
    """The CSRF token and the case's latest event a page's forms send back."""
    found = {"csrf": CSRF.search(page_html).group(1)}
    if seen := SEEN.search(page_html):
        found["seen"] = seen.group(1)
    return found
