"""``monitor demo``: the whole pass, offline, on a bundled sample site served on 127.0.0.1.

The sample site is a made-up product that has just shipped a new editor (blog posts, their
comment feeds, a community feed) plus two real captured feeds; see site/README.md.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import tempfile
import threading
import time
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from email.utils import format_datetime
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
from importlib.resources import as_file, files
from pathlib import Path
from zoneinfo import ZoneInfo

from monitor import cases
from monitor import config as configuration
from monitor.backlash import report as backlash
from monitor.backlash.events import watched
from monitor.errors import ConfigError
from monitor.pipeline import RunReport, run_once
from monitor.queue import replies_for
from monitor.reports import digest as digests
from monitor.reports import render
from monitor.store import Store

_PUBDATE = re.compile(r"PUBDATE\((-?\d+)h\)")
SOURCES = """\
sources:
  - name: acme-blog
    kind: rss
    url: {base}/blog.xml
    follow_comments: true
    tags: [blog]
  - name: acme-community
    kind: rss
    url: {base}/forum.atom
    tags: [forum]
  - name: gulp-releases
    kind: rss
    url: {base}/gulp-releases.atom
  - name: reddit-front-page
    kind: rss
    url: {base}/reddit-front.rss
  - name: acme-status
    kind: rss
    url: {base}/status.rss
"""
ZONE = "Europe/Berlin"
"""The demo's time zone: days, charts and times are Berlin's (a launch date alone is its
midnight there)."""
STATUS_FEED = "status.rss"
"""Missing for the first two passes, there for the third: a source that breaks and recovers."""

CONFIG = """\
store: sqlite:///monitor.db
timezone: {zone}
rules: rules/
sources: sources/
reports: reports/
events: [{{name: New editor, date: {launch}, keywords: [new editor, editor]}}]
receivers: {{admins: {{type: file, path: "{alerts}"}}}}
alerts: {{receivers: [admins], after_failures: 2}}
"""


def run_demo(folder: Path | None, echo: Callable[[str], None]) -> tuple[RunReport, list[Path]]:
    """Set up a demo project in ``folder`` (or a new temporary one), run a pass, write a digest
    and the backlash report on the sample product's new editor."""
    folder = Path(folder or tempfile.mkdtemp(prefix="monitor-demo-"))
    _start_afresh(folder)
    site = folder / "site"
    anchor = _sample_clock(datetime.now(ZoneInfo(ZONE)))
    _write_site(site, anchor.astimezone(UTC))
    with _serve(site) as base:
        (folder / "sources").mkdir(parents=True, exist_ok=True)
        (folder / "sources" / "demo.yaml").write_text(SOURCES.format(base=base))
        with as_file(files("monitor.demo") / "rules") as rules:
            shutil.copytree(rules, folder / "rules", dirs_exist_ok=True)
        launch = (anchor - timedelta(days=2)).date().isoformat()
        alerts = (folder / "reports" / "alerts.jsonl").resolve()
        alerts.parent.mkdir(exist_ok=True)
        (folder / "config.yaml").write_text(CONFIG.format(launch=launch, alerts=alerts,
                                                          zone=ZONE))
        config = configuration.load(folder / "config.yaml")
        store = Store(config.store_url)
        try:
            echo(f"Demo project in {folder}; sample site served at {base}\n")
            report = run_once(config, store)
            again = run_once(config, store)
            echo(f"A second pass found {sum(s.new for s in again.sources)} new posts "
                 f"({sum(s.unchanged for s in again.sources)} of {len(again.sources)} sources "
                 "unchanged: conditional GET and body hashes).\n")
            (site / STATUS_FEED).write_text("<rss version='2.0'><channel><title>Acme status"
                                            "</title></channel></rss>")
            answered = _answer(store, config, site, datetime.now(UTC))
            run_once(config, store)  # collects the answered author's reply; follows it up
            if answered is not None:
                outcome = store.outcome(answered)
                echo(f"Case {answered} ({WON_BACK_AUTHOR}, thinking of switching) was answered "
                     f"by \"demo\"; her next post makes the follow-up say: "
                     f"{outcome['outcome'] if outcome else 'nothing yet'} (monitor queue "
                     "stats shows the won-back figures).\n")
            told = [json.loads(line)["posts"][0]["title"]
                    for line in alerts.read_text().splitlines()] if alerts.exists() else []
            echo(f"acme-status failed on purpose until its feed appeared before a third pass: "
                 f"the admins' receiver ({alerts.name}) was told: {'; '.join(told)}.\n")
            paths = render.write(
                digests.build(store, datetime.now(config.timezone).date(), config.timezone),
                config.reports_dir)
            event = watched(config.main.events, config.timezone)[0]
            paths += backlash.write(backlash.build(store, event, config.timezone,
                                                   datetime.now(UTC)), config.reports_dir)
        finally:
            store.close()
    return report, paths


MARK = ".monitor-demo"
"""The file that tells a folder the demo made (and may start afresh) from anyone's project."""
_DEMO_STATE = ("monitor.db", "monitor.db-wal", "monitor.db-shm", "monitor.db-journal",
               "reports/alerts.jsonl", f"site/{STATUS_FEED}")  # it appears mid-run


def _is_demo(folder: Path) -> bool:
    """Marked, or made by a demo from before the mark: its sources file and its launch."""
    if (folder / MARK).exists():
        return True
    config = folder / "config.yaml"
    return (folder / "sources" / "demo.yaml").is_file() and config.is_file() \
        and "{name: New editor," in config.read_text("utf-8", "replace")


def _start_afresh(folder: Path) -> None:
    """A previous demo's folder loses its store and alerts, so a second run replays the same
    story (answering a case already answered would fail); a folder holding a project that is
    not a demo's is refused, and nothing in it is touched or deleted."""
    if _is_demo(folder):
        for name in _DEMO_STATE:
            (folder / name).unlink(missing_ok=True)
    elif any((folder / name).exists() for name in ("config.yaml", "monitor.db", "sources")):
        raise ConfigError("holds a project that is not a demo's: give --dir a new or empty "
                          "folder (the demo writes its own config, sources and store)",
                          file=str(folder))
    folder.mkdir(parents=True, exist_ok=True)
    (folder / MARK).write_text("made by `monitor demo`: a second run starts its store afresh\n")


SAMPLE_HOUR = 10
"""The sample posts are dated back from the last time it was this hour in Berlin, not from
now: which of them fall before the launch (two days back, at midnight) and on which days,
and so the backlash report's figures, do not depend on the hour the demo is run."""


def _sample_clock(now: datetime) -> datetime:
    """The last SAMPLE_HOUR o'clock at or before ``now`` (aware, in the demo's zone)."""
    anchor = now.replace(hour=SAMPLE_HOUR, minute=0, second=0, microsecond=0)
    return anchor if anchor <= now else anchor - timedelta(days=1)  # wall-clock arithmetic


WON_BACK_AUTHOR = "sarahbeth"
"""The demo answers her case, and she writes back happier: a won-back case to show."""

LATER_POST = """\
  <entry>
    <title>Re: Thinking of switching after the new editor</title>
    <id>tag:community.acme.example,2026:post-5508</id>
    <link rel="alternate" href="/community/t/thinking-of-switching/5506#post-5508"/>
    <author><name>sarahbeth</name></author>
    <published>{when}</published>
    <updated>{when}</updated>
    <thr:in-reply-to xmlns:thr="http://purl.org/syndication/thread/1.0"
        ref="tag:community.acme.example,2026:post-5506"
        href="tag:community.acme.example,2026:post-5506"/>
    <content type="html">&lt;p&gt;Thanks for the quick answer! The export button is back in \
the toolbar and offline mode works again in the beta. Happy to stay on Pro.&lt;/p&gt;</content>
  </entry>
"""


def _answer(store: Store, config: configuration.Config, site: Path, now: datetime) -> int | None:
    """Record that the team answered ``WON_BACK_AUTHOR``'s case (by "demo", with the first
    fitting template), and put her later, happier post on the community feed, published
    after the answer: the next pass collects it and the follow-up decides "won back"."""
    case = next((c for c in store.list_cases(now=now) if c.author == WON_BACK_AUTHOR), None)
    if case is None:
        return None
    replies = replies_for(store.get_case(case.id, now), config.replies())
    answered_at = now - timedelta(minutes=2)  # both in the past: the next pass counts her post
    cases.respond(store, case.id, actor="demo", now=answered_at,
                  template=replies[0]["id"] if replies else None,
                  text="Sorry about the trouble: the export button is back in the "
                  "toolbar, and offline mode is in the beta.")
    later = (now - timedelta(minutes=1)).replace(microsecond=0)  # after the answer
    feed = site / "forum.atom"
    feed.write_text(feed.read_text().replace(
        "</feed>", LATER_POST.format(when=later.isoformat()) + "</feed>"))
    ahead = time.time() + 2  # newer than the Last-Modified the last fetch saw, even within
    os.utime(feed, (ahead, ahead))  # the same second: the next pass gets it, not a 304
    return case.id


def _write_site(site: Path, now: datetime) -> None:
    """Copy the bundled site, turning each PUBDATE(-Nh) into a real time N hours ago."""
    site.mkdir(parents=True, exist_ok=True)
    for item in (files("monitor.demo") / "site").iterdir():
        if not item.is_file():
            continue
        data = item.read_bytes()
        if item.name.endswith((".xml", ".atom")) and b"PUBDATE(" in data:
            def when(match: re.Match[str], atom: bool = item.name.endswith(".atom")) -> str:
                moment = now + timedelta(hours=int(match.group(1)))
                return moment.isoformat(timespec="seconds") if atom else format_datetime(
                    moment, usegmt=True)
            data = _PUBDATE.sub(when, data.decode("utf-8")).encode("utf-8")
        (site / item.name).write_bytes(data)


class _serve:  # noqa: N801 (used as a context manager)
    """A static file server on 127.0.0.1 with Last-Modified / 304, as real feeds have."""

    def __init__(self, root: Path) -> None:
        handler = partial(_QuietHandler, directory=str(root))
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), handler)

    def __enter__(self) -> str:
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def __exit__(self, *exc: object) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


class _QuietHandler(SimpleHTTPRequestHandler):
    def log_message(self, *args: object) -> None:
        pass


DEMO_USER = "demo"


def demo_login(config_path: Path) -> tuple[str, str]:
    """An admin account for the demo's web inbox with a new random password, shown once
    (a demo run again in the same folder gets a new one)."""
    import secrets

    from monitor import accounts

    config = configuration.load(config_path)
    password = secrets.token_urlsafe(12)
    now = datetime.now(UTC)
    with Store(config.store_url) as store:
        if accounts.get_user(store, DEMO_USER) is None:
            accounts.add_user(store, DEMO_USER, "admin", password, now)
        else:
            accounts.set_password(store, DEMO_USER, password, now)
    return DEMO_USER, password
