"""The daily digest: built from a seeded store with a clock we set, written in three formats,
e-mailed to an aiosmtpd server on 127.0.0.1 one recipient at a time, and opened in Chromium."""

from __future__ import annotations

import csv
import io
import re
import threading
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import pytest
import yaml
from browser import chromium, needs_chromium, probe
from click.testing import CliRunner
from conftest import fixture_bytes, pg_schema
from filing import save_scores
from smtp import Mailbox, free_port, smtp_server

from monitor import cases
from monitor import config as configuration
from monitor.backlash.events import watched
from monitor.cli import main
from monitor.config import Event
from monitor.errors import MonitorError
from monitor.model import Fetch, Flag, Post, Routing, Score
from monitor.queue import QueuePolicy
from monitor.reports.digest import Digest, build, profile_url
from monitor.reports.mail import send_digest
from monitor.reports.render import CSV_COLUMNS, render_csv, write
from monitor.store import Store, StoredPost, content_hash
from monitor.store import reports as ledger
from monitor.store.schema import report_sends

BERLIN = ZoneInfo("Europe/Berlin")
DAY = date(2026, 2, 16)                                    # a Monday, long over
NOW = datetime(2026, 2, 17, 8, 0, tzinfo=BERLIN)           # the morning after
POLICY = QueuePolicy.of([{"name": "ana"}], {"critical": "2h", "high": "8h"})
HOSTILE = ('Broken again <script>alert("pwned")</script> <img src="https://tracker.test/p.gif">'
           ' [click me](javascript:alert(1)) # not a heading')


def at(day: date, hour: int, minute: int = 0) -> datetime:
    return datetime(day.year, day.month, day.day, hour, minute, tzinfo=BERLIN).astimezone(UTC)


@dataclass
class Seed:
    """Posts, scores and flags put into a store through its own write path (save_fetch,
    save_scores: the cases are filed by the queue's code), each at a time we choose."""

    store: Store

    def post(self, name: str, *, seen: datetime, source: str = "reddit-acme",
             kind: str = "reddit", text: str = "It works.", author: str | None = "someone",
             title: str | None = "Meet the new editor", thread: str | None = "t3_editor",
             url: str | None = None, published: datetime | None = None,
             compound: float = 0.1, angry: bool = False, severity: str | None = None,
             category: str | None = "backlash", tags: tuple[str, ...] = (),
             rules: tuple[str, ...] = ("backlash-change",), queue: bool = True) -> int:
        url = url or f"https://www.reddit.com/r/acme/comments/editor/c/{name}/"
        post = Post(source=source, external_id=name, url=url, author=author, title=title,
                    text=text, published_at=published or seen, thread_id=thread,
                    parent_id=None if thread is None else thread)
        saved = self.store.save_fetch(source, kind, Fetch((post,), None), seen)
        post_id = saved.new[0]
        stored = StoredPost(post_id, post, content_hash(post.title, post.text))
        flag = None if severity is None else Flag(
            severity, rules, tuple(f"{rule}: because of {name}" for rule in rules), category,
            tags)
        score = Score(compound, max(compound, 0), 0.5, max(-compound, 0), angry=angry)
        group = f"thread:{source}:{thread or name}"
        routing = Routing(("queue",) if queue else (), group)
        save_scores(self.store, [(stored, score, flag)], seen, routes={post_id: routing},
                    policy=POLICY)
        return post_id


def history(seed: Seed, days: int = 7, posts: int = 10, negative: int = 2,
            flags: int = 2) -> None:
    """``days`` ordinary days before DAY: ``posts`` a day, ``negative`` of them negative,
    ``flags`` of them flagged medium (with no case, so none is overdue now)."""
    for back in range(1, days + 1):  # a day's posts in one fetch and one scoring, as a pass
        seen = at(DAY - timedelta(days=back), 10)
        made = [Post("reddit-acme", f"h{back}-{n}", f"https://www.reddit.com/r/acme/{back}/{n}",
                     "someone", None, "An ordinary comment.", seen) for n in range(posts)]
        ids = seed.store.save_fetch("reddit-acme", "reddit", Fetch(tuple(made), None), seen).new
        save_scores(
            seed.store,
            [(StoredPost(i, post, content_hash(None, post.text)),
              Score(-0.6 if n < negative else 0.3, 0, 0.5, 0),
              Flag("medium", ("churn-hint",), ("churn-hint: hints",)) if n < flags else None)
             for n, (i, post) in enumerate(zip(ids, made, strict=True))],
            seen, routes={i: Routing((), f"post:{i}") for i in ids})


def the_day(seed: Seed) -> None:
    """DAY itself: a pile-on in one Reddit thread, one high post on a Discourse forum, medium
    and low posts, praise, plain posts, and flags just either side of midnight."""
    seed.post("pile-1", seen=at(DAY, 9), text=HOSTILE, author="furious_fred",
              severity="critical", compound=-0.9, angry=True)
    seed.post("pile-2", seen=at(DAY, 9, 30), text="Second that, the new editor is awful.",
              author="bea", severity="high", compound=-0.7)
    seed.post("pile-3", seen=at(DAY, 10), text="Worst update in years.", author="[deleted]",
              severity="high", compound=-0.8)
    seed.post("forum-1", seen=at(DAY, 11), source="acme-forum", kind="discourse",
              url="https://community.acme.test/forum/t/new-editor-feedback/77/4",
              title="New editor feedback", thread="77", text="I can't find the save button.",
              author="carol", severity="high", compound=-0.5)
    seed.post("old-post", seen=at(DAY, 12), published=at(DAY - timedelta(days=3), 8),
              source="hn", kind="hackernews", url="https://news.ycombinator.com/item?id=42",
              title="Acme ships a new editor", thread="41", author="pg_fan",
              text="=HYPERLINK(\"https://evil.test\",\"click\") is what this editor needs",
              severity="medium", compound=-0.3, category="churn")
    seed.post("medium-rss", seen=at(DAY, 13), source="blog", kind="rss",
              url="https://blog.acme.test/new-editor#c9", title="Our new editor", thread="b1",
              author="dave", text="Meh. " + "The toolbar moved around again and again. " * 20,
              severity="medium", compound=-0.4)
    seed.post("low-1", seen=at(DAY, 14), source="blog", kind="rss", thread="b1",
              url="javascript:alert(1)", title="Our new editor", author="erin",
              text="Slightly slower than before?", severity="low", compound=-0.1)
    for n, compound in enumerate((0.7, 0.95, 0.8)):
        seed.post(f"praise-{n}", seen=at(DAY, 15, n), source="blog", kind="rss", thread="b1",
                  title="Our new editor", author=f"fan{n}", text=f"Thank you, great update {n}!",
                  severity="low", category="praise", tags=("praise",), rules=("praise-thanks",),
                  compound=compound)
    for n in range(5):
        seed.post(f"plain-{n}", seen=at(DAY, 16, n), thread=None, title=None,
                  compound=-0.5 if n < 2 else 0.5)
    seed.post("before-midnight", seen=at(DAY - timedelta(days=1), 23, 59), thread="x",
              author="early", text="Flagged the evening before.", severity="high", queue=False)
    seed.post("after-midnight", seen=at(DAY + timedelta(days=1), 0, 1), thread="y",
              author="late", text="Flagged the morning after.", severity="critical",
              queue=False)


def seed_all(store: Store) -> Store:
    seed = Seed(store)
    history(seed)
    the_day(seed)
    for case in store.list_cases(now=NOW.astimezone(UTC)):
        if case.group_key and case.group_key.startswith("thread:acme-forum:"):
            cases.respond(store, case.id, actor="ana", now=at(DAY, 12))  # answered: not overdue
    return store


@pytest.fixture(scope="module")
def seeded_sqlite(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Store]:
    """DAY and the week before, seeded once for the module; tests add report_sends rows
    only, and those are cleared after each test."""
    store = seed_all(Store(f"sqlite:///{tmp_path_factory.mktemp('seeded') / 'monitor.db'}"))
    yield store
    store.close()


@pytest.fixture(scope="module")
def seeded_pg() -> Iterator[Store]:
    with pg_schema() as url:
        store = seed_all(Store(url))
        yield store
        store.close()


def _forget_sends(store: Store) -> None:
    with store.engine.begin() as db:
        db.execute(report_sends.delete())


@pytest.fixture(params=["sqlite", "postgresql"])
def seeded(request: pytest.FixtureRequest) -> Iterator[Store]:
    """The seeded store on SQLite and, when reachable, PostgreSQL: for what the SQL does."""
    store = request.getfixturevalue("seeded_pg" if request.param == "postgresql"
                                    else "seeded_sqlite")
    yield store
    _forget_sends(store)


@pytest.fixture
def seeded_one(seeded_sqlite: Store) -> Iterator[Store]:
    """The seeded SQLite store alone: for what does not depend on the database."""
    yield seeded_sqlite
    _forget_sends(seeded_sqlite)


def made(store: Store, day: date = DAY, **options: Any) -> Digest:
    return build(store, day, BERLIN, now=NOW.astimezone(UTC), **options)


_BUILT: dict[str, Digest] = {}


def built(store: Store) -> Digest:
    """The digest of DAY (praise 2), built once per seeded store."""
    if store.url not in _BUILT:
        _BUILT[store.url] = made(store, praise=2)
    return _BUILT[store.url]


# --- content ---------------------------------------------------------------------------------

def test_most_urgent_first_grouped_by_thread(seeded: Store) -> None:
    d = built(seeded)
    assert [(t.source, t.severity, [i.author for i in t.items]) for t in d.urgent] == [
        ("reddit-acme", "critical", ["furious_fred", "[deleted]", "bea"]),  # worst, latest
        ("acme-forum", "high", ["carol"]),
    ]
    pile, forum = d.urgent
    assert pile.title == "Meet the new editor" and len(pile.cases) == 1  # one thread, one case
    case = pile.cases[0]
    assert (case.state, case.assignee, case.overdue) == ("assigned", "ana", True)
    assert case.due_at == datetime(2026, 2, 16, 11, 0, tzinfo=BERLIN)  # 2 h SLA from 09:00
    assert [(c.state, c.overdue) for c in forum.cases] == [("responded", False)]
    # medium before low; the post published three days earlier is in (it was flagged today)
    assert [(i.severity, i.author) for i in d.others] == [
        ("medium", "dave"), ("medium", "pg_fan"), ("low", "erin")]
    # praise: apart, the warmest first, at most `praise`; never counted as needing a person
    assert [i.author for i in d.praise_shown] == ["fan1", "fan2"] and len(d.praise) == 3
    flagged_authors = {i.author for i in d.items}
    assert "early" not in flagged_authors and "late" not in flagged_authors  # other days
    assert d.by_severity == {"critical": 1, "high": 3, "medium": 2, "low": 1}
    assert d.summary == ("2 critical or high cases need a person (4 posts in 2 threads); 3 "
                         "more flagged medium or low; 1 case overdue.")


def test_headline_figures_against_the_seven_days_before(seeded: Store) -> None:
    d = built(seeded)
    # DAY: 3 + 1 + 1 + 1 + 1 + 3 + 5 posts first seen (the one published earlier counts on
    # the day it was first seen); 7 days before: 10 a day, plus the evening-before post.
    assert d.posts.value == 15 and d.posts.average == pytest.approx(71 / 7)
    assert d.posts.versus() == "+48% vs 7-day avg 10.1"
    assert d.flagged.value == 7 and d.flagged.average == pytest.approx(15 / 7)
    assert d.negative.value == pytest.approx(9 / 15)  # 7 flagged and 2 plain posts negative
    assert d.negative.average == pytest.approx((6 * 2 / 10 + 2 / 11) / 7)
    assert d.negative.versus(share=True) == "+40 pts vs 7-day avg 20%"
    assert d.new_cases == 4   # the pile-on's, the forum's, the HN post's, the blog thread's
    assert d.overdue == 1     # the pile-on's: answered neither by 11:00 nor since
    chart_days = [(day.day, day.posts, sum(day.flags.values())) for day in d.days]
    assert len(chart_days) == 14 and chart_days[-1] == (DAY, 15, 7)
    assert chart_days[-2] == (DAY - timedelta(days=1), 11, 3)
    assert chart_days[0][1:] == (0, 0) and d.chart is not None
    assert d.chart.startswith(b"\x89PNG\r\n\x1a\n")


def test_a_young_store_compares_with_the_days_it_has(store_url: str) -> None:
    store = Store(store_url)
    seed = Seed(store)
    seed.post("first", seen=at(DAY - timedelta(days=2), 9), severity="high")
    seed.post("second", seen=at(DAY, 9), thread="other")
    first, third = made(store, DAY - timedelta(days=2)), made(store)
    store.close()
    assert first.posts.versus() == "nothing earlier to compare"  # its first day
    assert first.flagged.value == 1 and first.flagged.average is None
    assert third.posts.versus() == "+100% vs 2-day avg 0.5"  # not the empty days before it
    assert (third.flagged.value, third.flagged.versus()) == (0, "-100% vs 2-day avg 0.5")


def test_an_empty_day_is_a_short_calm_digest(tmp_path: Path, sqlite_url: str) -> None:
    store = Store(sqlite_url)
    d = made(store)
    paths = write(d, tmp_path)
    store.close()
    assert d.quiet and d.chart is None and d.summary == "Nothing needs you today."
    assert [p.name for p in paths] == ["2026-02-16.html", "2026-02-16.md", "2026-02-16.csv"]
    html = paths[0].read_text()
    assert "Nothing needs you today." in html and "Critical and high" not in html
    assert "<img" not in html and len(html) < 8000
    assert "Nothing needs you today." in paths[1].read_text()
    assert paths[2].read_bytes() == ("\ufeff" + ",".join(CSV_COLUMNS) + "\r\n").encode()


def test_a_day_without_flags_still_reports_what_is_overdue(seeded_one: Store) -> None:
    d = made(seeded_one, day=DAY + timedelta(days=2))
    assert not d.urgent and not d.others and d.posts.value == 0
    assert not d.quiet and d.summary == "1 case overdue."  # the pile-on still needs a person
    assert d.chart is not None                            # and the week had posts to chart


def test_hostile_post_is_escaped_in_every_format(seeded_one: Store, tmp_path: Path) -> None:
    html_path, md_path, csv_path, png_path = write(built(seeded_one), tmp_path)
    html = html_path.read_text()
    assert "<script" not in html and "tracker.test/p.gif\"" not in html
    assert "&lt;script&gt;alert(&#34;pwned&#34;)&lt;/script&gt;" in html
    assert "&lt;img src=&#34;https://tracker.test/p.gif&#34;&gt;" in html
    assert all(link.startswith("https://") for link in re.findall(r'href="([^"]*)"', html))
    assert len(re.findall(r"<img ", html)) == 1  # the chart, nothing a post wrote
    markdown = md_path.read_text()
    assert "<script>" not in markdown and "\\<script\\>" in markdown
    assert "\\[click me\\](javascript:alert(1))" in markdown and "\\# not a heading" in markdown
    assert "<javascript:" not in markdown
    assert f"![Posts read, negative share and flags, last 14 days]({png_path.name})" in markdown
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    fred = next(r for r in rows if r["author"] == "furious_fred")
    assert fred["text"] == HOSTILE  # the CSV keeps the words; a spreadsheet shows them as text
    fan = next(r for r in rows if r["author"] == "pg_fan")
    assert fan["text"].startswith("'=HYPERLINK(")  # a formula would run: shown as text instead
    assert fan["compound"] == "-0.3"              # our numbers stay numbers
    assert [r["severity"] for r in rows] == ["critical", "high", "high", "high", "medium",
                                             "medium", "low", "low", "low", "low"]
    assert rows[-1]["praise"] == "True" and rows[0]["case_overdue"] == "True"


def test_quotes_are_cut_on_a_word_boundary(seeded_one: Store) -> None:
    item = next(i for i in built(seeded_one).others if i.author == "dave")
    assert len(item.text) > 800 and item.quote.endswith(" …") and len(item.quote) <= 282
    assert item.text.startswith(item.quote[:-2])
    assert re.match(r"\W", item.text[len(item.quote) - 2])  # the cut is between words


def test_authors_link_to_their_profiles_where_known(seeded_one: Store, tmp_path: Path) -> None:
    assert profile_url("reddit", "https://www.reddit.com/r/a/comments/x/", "fred") == \
        "https://www.reddit.com/user/fred"
    assert profile_url("hackernews", "https://news.ycombinator.com/item?id=1", "pg") == \
        "https://news.ycombinator.com/user?id=pg"
    assert profile_url("discourse", "https://x.test/forum/t/slug/77/4", "a b") == \
        "https://x.test/forum/u/a%20b"
    assert profile_url("discourse", "https://x.test/t/slug/77", "ann") == "https://x.test/u/ann"
    assert profile_url("rss", "https://blog.test/post#c1", "dave") is None
    assert profile_url("reddit", "https://www.reddit.com/r/a/", "[deleted]") is None
    assert profile_url("reddit", "javascript:alert(1)", "fred") is None
    html = write(built(seeded_one), tmp_path)[0].read_text()
    assert '<a href="https://www.reddit.com/user/furious_fred"' in html
    assert '<a href="https://community.acme.test/forum/u/carol"' in html
    assert '<a href="https://news.ycombinator.com/user?id=pg_fan"' in html
    assert "/user/[deleted]" not in html and "/u/dave" not in html


def test_storms_are_flags_but_not_posts_read(store_url: str) -> None:
    store = Store(store_url)
    seed = Seed(store)
    seed.post("storm", seen=at(DAY, 9), source="event:New editor", kind="event",
              severity="critical", author=None, text="Negative posts about New editor: 40 in "
              "an hour (robust z 6.1)", category="storm")
    seed.post("real", seen=at(DAY, 10))
    d = made(store)
    store.close()
    assert d.posts.value == 1 and d.by_severity["critical"] == 1


def test_only_open_cases_count_as_needing_a_person(store_url: str) -> None:
    store = Store(store_url)
    seed = Seed(store)
    seed.post("open", seen=at(DAY, 9), thread="a", severity="high", text="Still broken.")
    seed.post("fixed", seen=at(DAY, 10), thread="b", severity="critical", text="Broken!")
    seed.post("fixed-2", seen=at(DAY, 10, 30), thread="b", severity="high", text="Me too.")
    seed.post("spam", seen=at(DAY, 11), thread="c", severity="high", text="Buy now.")
    ids = {c.group_key: c.id for c in store.list_cases(now=at(DAY, 12))}
    cases.resolve(store, ids["thread:reddit-acme:b"], actor="ana", now=at(DAY, 12))
    cases.dismiss(store, ids["thread:reddit-acme:c"], "spam", actor="ana", now=at(DAY, 12))
    assert made(store).summary == ("1 critical or high case needs a person (1 post in 1 "
                                   "thread); 1 case overdue.")
    cases.resolve(store, ids["thread:reddit-acme:a"], actor="ana", now=at(DAY, 12))
    closed = made(store)
    store.close()
    assert closed.summary == "4 critical or high posts, none in an open case."
    assert [len(t.items) for t in closed.urgent] == [2, 1, 1]  # still listed, for the record


def test_title_only_posts_and_dates_of_other_years_read_right(store_url: str,
                                                              tmp_path: Path) -> None:
    store = Store(store_url)
    seed = Seed(store)
    seed.post("link", seen=at(DAY, 9), text="", title="Why did you remove dark mode?",
              thread="t3_link", severity="high")
    seed.post("old", seen=at(DAY, 10), published=datetime(2015, 11, 12, 18, 3, tzinfo=BERLIN),
              text="", title="Cable companies are scared", thread="t3_old", severity="low")
    seed.post("recent", seen=at(DAY, 11), published=at(DAY - timedelta(days=3), 8),
              thread="t3_recent", severity="medium", text="Meh.")
    seed.post("new-year", seen=at(date(2026, 12, 31), 9), thread="t3_eve", severity="low",
              published=at(date(2026, 12, 30), 10), text="Late in the year.")
    d = made(store)
    new_year = build(store, date(2026, 12, 31), BERLIN,  # 00:30 in Berlin: 2027 already
                     now=datetime(2026, 12, 31, 23, 30, tzinfo=UTC))
    store.close()
    assert d.urgent[0].items[0].quote == "Why did you remove dark mode?"
    assert [i.short_quote for i in d.others] == ["Meh.", "Cable companies are scared"]
    html, markdown = (path.read_text() for path in write(d, tmp_path / "a")[:2])
    assert "  > Why did you remove dark mode?\n" in markdown
    for text in (html, markdown):
        assert "Thu 12 Nov 2015 18:03" in text      # not "Thu 12 Nov": that is not 2026's
        assert "Fri 13 Feb 08:00" in text           # this year's: no year
    assert "Wed 30 Dec 2026 10:00" in write(new_year, tmp_path / "b")[1].read_text()


def test_a_storm_leads_the_critical_threads_with_the_posts_behind_it(
        store_url: str, tmp_path: Path) -> None:
    store = Store(store_url)
    seed = Seed(store)
    for n in range(3):  # a bigger critical thread: it led before storms came first
        seed.post(f"pile-{n}", seen=at(DAY, 12, 10 + n), thread="t3_pile", author=f"pile{n}",
                  text=f"The new editor is awful ({n})", severity="critical", compound=-0.9)
    seed.post("storm", seen=at(DAY, 13), published=at(DAY, 12), source="event:New editor",
              kind="event", author=None, title="Backlash storm: New editor",
              thread="storm:New editor", text="Mon 16 Feb 2026 (UTC): 12 negative posts about "
              "New editor in the hour to 13:00, typical 1 at that hour (z 6.1)",
              severity="critical", tags=("storm", "event:New editor"), rules=("storm",),
              compound=-0.5)
    seed.post("before", seen=at(DAY, 11), thread="t3_before", text="The new editor ate it.",
              severity="high")
    seed.post("slow", seen=at(DAY, 12, 40), thread="t3_slow", author="sam", title=None,
              text="The new editor is slow.", severity="medium")
    seed.post("billing", seen=at(DAY, 12, 30), thread="t3_bill", title="Billing",
              text="I was charged twice.", severity="high")
    launch = Event(name="New editor", date=datetime(2026, 2, 10), keywords=["new editor"])
    d = made(store, events=watched([launch], BERLIN))
    plain = made(store)
    store.close()
    assert [(t.title, t.storm) for t in d.urgent][:2] == [
        ("Backlash storm: New editor", True), ("Meet the new editor", False)]
    storm = d.urgent[0]  # behind it: the launch's flagged posts since it began, worst first
    assert [i.author for i in storm.behind] == ["pile2", "pile1", "pile0", "sam"]
    assert not any(t.behind for t in d.urgent[1:])
    assert plain.urgent[0].storm and plain.urgent[0].behind == ()  # no events: no members
    html, markdown = (path.read_text() for path in write(d, tmp_path)[:2])
    assert "Posts behind it, 4 flagged about the launch since it began:" in markdown
    assert "**storm detector**" in markdown and "storm detector</strong>" in html
    assert markdown.index("Backlash storm: New editor") < markdown.index("Meet the new")
    assert html.count("The new editor is slow.") == 2  # behind the storm, and in its line


def test_threads_are_titled_by_the_post_they_are_on(store_url: str) -> None:
    store = Store(store_url)
    seed = Seed(store)
    for name, author, severity in (("c12", "Grace", "critical"), ("c13", "Carol", "high")):
        seed.post(name, seen=at(DAY, 9), source="blog-comments", kind="rss", author=author,
                  title=f"Comment on Widget 2.0 is out by {author}", severity=severity,
                  thread="https://blog.test/widget-2-0/", text="The update broke my export.")
    seed.post("41", seen=at(DAY, 8), source="hn", kind="hackernews", thread=None,
              title="Acme ships a new editor", text="A link.")
    seed.post("43", seen=at(DAY, 9), source="hn", kind="hackernews", title=None, thread="41",
              text="Worst editor I have used.", severity="high")
    d = made(store)
    store.close()
    assert {t.source: t.title for t in d.urgent} == {"blog-comments": "Widget 2.0 is out",
                                                     "hn": "Acme ships a new editor"}
    rows = csv.DictReader(io.StringIO(render_csv(d)))
    assert {r["thread_title"] for r in rows} == {"Widget 2.0 is out", "Acme ships a new editor"}


def test_the_monitors_alerts_about_itself_are_not_in_the_digest(store_url: str) -> None:
    store = Store(store_url)
    seed = Seed(store)
    seed.post("source-broken:blog:never", seen=at(DAY, 9), source="system:monitor",
              kind="system", author=None, title="Source broken: blog", thread="source:blog",
              text="blog (rss) failed 5 times in a row", severity="high", category="system",
              tags=("system", "source-broken"), rules=("source-broken",), queue=False)
    seed.post("real", seen=at(DAY, 10), severity="high", text="It broke.")
    d = made(store)
    store.close()
    assert [i.source for i in d.items] == ["reddit-acme"]
    assert d.by_severity["high"] == d.flagged.value == d.days[-1].flags["high"] == 1


# --- the e-mail --------------------------------------------------------------------------------

@pytest.fixture
def smtp() -> Iterator[tuple[Mailbox, int]]:
    with smtp_server(login=(b"bot", b"pw")) as running:
        yield running


TEAM = ["ana@acme.test", "ben@acme.test", "cleo@acme.test"]


def project(folder: Path, store_url: str, port: int, to: list[str] = TEAM,
            **mail: Any) -> Path:
    """A config whose digest goes to ``to`` through the e-mail receiver ``mail``."""
    (folder / "sources").mkdir(parents=True, exist_ok=True)
    (folder / "rules").mkdir(exist_ok=True)
    (folder / "sources" / "none.yaml").write_text("sources: []\n")
    settings = {"store": store_url, "timezone": "Europe/Berlin",
                "receivers": {"mail": {"type": "email", "host": "127.0.0.1", "port": port,
                                       "security": "none", "timeout": 5,
                                       "sender": "Feedback Monitor <monitor@acme.test>",
                                       "to": ["ops@acme.test"], **mail}},
                "digest": {"to": to, "praise": 2}}
    (folder / "config.yaml").write_text(yaml.safe_dump(settings))
    return folder / "config.yaml"


def test_the_email_arrives_with_text_html_and_the_chart(
        seeded_one: Store, smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    mailbox, port = smtp
    config = configuration.load(project(tmp_path, seeded_one.url, port, to=["ana@acme.test"]))
    outcome = send_digest(config, seeded_one, DAY, NOW.astimezone(UTC), built(seeded_one))
    assert outcome.ok and outcome.sent == ("ana@acme.test",)
    (recipient, message), = mailbox.received()
    assert recipient == "ana@acme.test" and message["To"] == "ana@acme.test"
    assert message["Subject"] == ("[feedback-monitor] Digest Mon 16 Feb: 1 critical, 3 high, "
                                  "2 medium, 1 low, 1 overdue")
    assert message["Message-ID"].endswith(".digest@acme.test>")
    assert message.get_content_type() == "multipart/alternative"
    plain, related = message.get_payload()
    assert plain.get_content_type() == "text/plain"
    assert related.get_content_type() == "multipart/related"
    html_part, image = related.get_payload()
    assert html_part.get_content_type() == "text/html"
    html = html_part.get_content()
    assert image.get_content_type() == "image/png"
    assert image.get_content().startswith(b"\x89PNG")
    cid = image["Content-ID"].strip("<>")
    assert f'src="cid:{cid}"' in html and "data:image" not in html
    assert "Critical and high, by thread" in html and "&lt;script&gt;" in html
    text = plain.get_content()
    assert "2 critical or high cases need a person (4 posts in 2 threads)" in text
    assert "Second that, the new editor is awful." in text


def test_a_refused_recipient_is_retried_alone(
        seeded: Store, smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    mailbox, port = smtp
    config = configuration.load(project(tmp_path, seeded.url, port))
    mailbox.refuse = {"ben@acme.test": "550 5.1.1 no such user"}
    now = NOW.astimezone(UTC)
    first = send_digest(config, seeded, DAY, now, built(seeded))
    assert first.sent == ("ana@acme.test", "cleo@acme.test") and not first.ok
    assert first.failed[0][0] == "ben@acme.test" and "550" in first.failed[0][1]
    rows = seeded.report_send_states("digest:2026-02-16")
    assert {r: (v["state"], v["attempts"]) for r, v in rows.items()} == {
        "ana@acme.test": ("sent", 1), "ben@acme.test": ("failed", 1),
        "cleo@acme.test": ("sent", 1)}
    mailbox.refuse = {}
    second = send_digest(config, seeded, DAY, now + timedelta(hours=1), built(seeded))
    assert second.sent == ("ben@acme.test",) and second.ok
    assert second.already == ("ana@acme.test", "cleo@acme.test")
    third = send_digest(config, seeded, DAY, now + timedelta(hours=2))
    assert third.sent == () and len(third.already) == 3
    assert [r for r, _ in mailbox.received()] == [
        "ana@acme.test", "cleo@acme.test", "ben@acme.test"]  # each exactly once
    assert seeded.report_send_states("digest:2026-02-16")["ben@acme.test"][
        "attempts"] == 2


def test_the_message_id_is_unique_per_store_and_kept_on_a_resend(
        seeded_one: Store, smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    """The same day's digest from two installations never shares a Message-ID (Gmail would
    drop the second); one store sending it again after a crash keeps its Message-ID."""
    mailbox, port = smtp
    config = configuration.load(project(tmp_path, seeded_one.url, port, to=["ana@acme.test"]))
    now, digest = NOW.astimezone(UTC), built(seeded_one)
    assert send_digest(config, seeded_one, DAY, now, digest).sent == ("ana@acme.test",)
    _forget_sends(seeded_one)  # killed between sending and marking: sent again
    assert send_digest(config, seeded_one, DAY, now, digest).sent == ("ana@acme.test",)
    with Store(f"sqlite:///{tmp_path / 'elsewhere.db'}") as other:  # another installation
        assert send_digest(config, other, DAY, now, digest).sent == ("ana@acme.test",)
    first, again, elsewhere = (message["Message-ID"] for _, message in mailbox.received())
    assert first == again != elsewhere
    assert elsewhere.endswith(".digest@acme.test>")

def test_a_claim_keeps_a_second_sender_off_until_it_expires(store_url: str) -> None:
    store = Store(store_url)
    now = NOW.astimezone(UTC)
    assert store.claim_report_send("digest:x", "a@acme.test", now)
    assert not store.claim_report_send("digest:x", "a@acme.test", now)
    later = now + ledger.CLAIM + timedelta(seconds=1)  # the first sender died mid-send
    assert store.claim_report_send("digest:x", "a@acme.test", later)
    store.mark_report_sent("digest:x", "a@acme.test", later)
    assert not store.claim_report_send("digest:x", "a@acme.test", later + timedelta(1))
    # Eight senders at once, each with its own connection: exactly one wins each recipient.
    wins: list[str] = []
    barrier = threading.Barrier(8)

    def race(n: int) -> None:
        barrier.wait()
        for recipient in ("b@acme.test", "c@acme.test"):
            if store.claim_report_send("digest:y", recipient, now):
                wins.append(recipient)

    threads = [threading.Thread(target=race, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    store.close()
    assert sorted(wins) == ["b@acme.test", "c@acme.test"]


def test_a_day_not_over_is_not_sent(seeded_one: Store, tmp_path: Path) -> None:
    config = configuration.load(project(tmp_path, seeded_one.url, free_port()))
    with pytest.raises(MonitorError, match="once the day is over"):
        send_digest(config, seeded_one, DAY, at(DAY, 23, 59))
    assert seeded_one.report_send_states("digest:2026-02-16") == {}


# --- the command -------------------------------------------------------------------------------

def invoke(*args: str) -> Any:
    return CliRunner().invoke(main, ["digest", *args])


def test_the_command_writes_sends_and_says_so(
        seeded_one: Store, smtp: tuple[Mailbox, int], tmp_path: Path) -> None:
    mailbox, port = smtp
    config = project(tmp_path, seeded_one.url, port)
    mailbox.refuse = {"cleo@acme.test": "550 5.1.1 no such user"}
    result = invoke("--config", str(config), "--day", "2026-02-16")
    assert result.exit_code == 1, result.output
    lines = result.output.splitlines()
    assert [Path(p).name for p in lines[:4]] == [
        "2026-02-16.html", "2026-02-16.md", "2026-02-16.csv", "2026-02-16.png"]
    assert "sent to ana@acme.test, ben@acme.test" in result.output
    assert "failed: cleo@acme.test: recipients refused" in result.output
    mailbox.refuse = {}
    again = invoke("--config", str(config), "--day", "2026-02-16")
    assert again.exit_code == 0 and "sent to cleo@acme.test" in again.output
    assert "already sent to ana@acme.test, ben@acme.test" in again.output
    quiet = invoke("--config", str(config), "--day", "2026-02-16", "--no-send")
    assert quiet.exit_code == 0 and len(quiet.output.splitlines()) == 4  # the files only
    assert len(mailbox.envelopes) == 3
    today = invoke("--config", str(config), "--day", "today", "--send")
    assert today.exit_code == 2 and "once the day is over" in today.output


def test_the_command_never_shows_the_password(
        seeded_one: Store, smtp: tuple[Mailbox, int], tmp_path: Path,
        monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture) -> None:
    _, port = smtp
    monkeypatch.setenv("SMTP_PASSWORD", "hunter2-secret")
    config = project(tmp_path, seeded_one.url, port, to=["ana@acme.test"], username="bot",
                     password="${SMTP_PASSWORD}")
    with caplog.at_level("DEBUG"):
        result = invoke("--config", str(config), "--day", "2026-02-16")
    assert result.exit_code == 1 and "login refused by 127.0.0.1" in result.output
    assert "login refused by 127.0.0.1" in caplog.text
    assert "hunter2" not in result.output and "hunter2" not in caplog.text
    row = seeded_one.report_send_states("digest:2026-02-16")["ana@acme.test"]
    assert row["state"] == "failed" and "hunter2" not in row["last_error"]


def test_bad_digest_config_exits_2(tmp_path: Path, sqlite_url: str) -> None:
    config = project(tmp_path, sqlite_url, 25)
    settings = yaml.safe_load(config.read_text())
    settings["receivers"] = {}
    config.write_text(yaml.safe_dump(settings))
    result = invoke("--config", str(config), "--day", "2026-02-16")
    assert result.exit_code == 2 and "digest.to: set digest.via" in result.output
    assert invoke("--config", str(config), "--day", "23/11/2026").exit_code == 2


def test_a_real_pass_lands_in_the_digest(server: Any, make_project: Any) -> None:
    """Feeds collected, scored and flagged by the shipped rules, then `monitor digest`: the
    whole way, with the comment feed's own hostile comment (moved from test_pipeline)."""
    server.serve("/guardian.rss", body=fixture_bytes("feeds/rss-parser/guardian.rss"))
    server.serve("/comments.xml", body=fixture_bytes("e2e/comments-v1.xml"),
                 headers={"Content-Type": "application/rss+xml"})
    config = make_project([
        {"name": "guardian", "kind": "rss", "url": server.url("/guardian.rss")},
        {"name": "blog-comments", "kind": "rss", "url": server.url("/comments.xml")}])
    assert CliRunner().invoke(main, ["run", "--config", str(config)]).exit_code == 0
    result = invoke("--config", str(config), "--day", "today")
    assert result.exit_code == 0, result.output
    html_path, md_path, csv_path = (Path(p) for p in result.output.split()[:3])
    html = html_path.read_text()
    assert "1 critical or high case needs a person (2 posts in 1 thread)." in html
    assert re.search(r"POSTS READ</div>\s*<div[^>]*>58</div>", html)
    assert "This redesign is a disaster" in html and "Marco" in html
    assert "<script>" not in html and "&lt;script&gt;alert(document.cookie)" in html
    assert html.count("<img ") == 1  # the chart; the comment's own image became text
    assert "This redesign is a disaster" in md_path.read_text()
    rows = list(csv.DictReader(io.StringIO(csv_path.read_text(encoding="utf-8-sig"))))
    assert [r["source"] for r in rows] == ["blog-comments", "blog-comments"]
    assert all(r["case_id"] == rows[0]["case_id"] != "" for r in rows)  # one thread, one case


# --- in a browser ------------------------------------------------------------------------------

@needs_chromium
def test_the_html_opens_in_chromium_and_looks_whole(seeded_one: Store, tmp_path: Path) -> None:
    d = built(seeded_one)
    page = write(d, tmp_path / "reports")[0]
    shot = tmp_path / "digest.png"
    done = chromium(str(tmp_path / "profile"), f"--screenshot={shot}", "--window-size=760,3000",
                    page.as_uri())
    assert done.returncode == 0, done.stderr[-2000:]
    assert shot.read_bytes().startswith(b"\x89PNG") and shot.stat().st_size > 50_000
    dom = chromium(str(tmp_path / "profile"), "--dump-dom", page.as_uri()).stdout
    assert 'id="digest-end"' in dom and "<script" not in dom  # parsed to the end, no script
    links = [i for t in d.urgent for i in t.items if i.url] + [
        i for i in d.praise_shown if i.url]
    assert dom.count(">open post</a>") == len(links) == 6
    found = probe(page, tmp_path / "profile")
    assert found == {"images": 1, "broken": [], "overflow": False, "end": True, "scripts": 0,
                     "console": []}, found


@needs_chromium
def test_the_browser_check_catches_a_broken_chart(seeded_one: Store, tmp_path: Path) -> None:
    """The check above is not a formality: a chart that does not decode is reported."""
    page = write(built(seeded_one), tmp_path)[0]
    page.write_text(re.sub(r"base64,[A-Za-z0-9+/=]{100}", "base64,AAAA", page.read_text()))
    found = probe(page, tmp_path / "profile")
    assert found["broken"] == [
        "Chart of the last 14 days: posts read, their negative share, and flags by severity"]


@pytest.mark.parametrize(("said", "shown"), [
    ("2. then it crashed", "2\\. then it crashed"),   # not an ordered list, and no "\2" shown
    ("12) again", "12\\) again"),
    ("- not a bullet", "\\- not a bullet"),
    ("+ nor this", "\\+ nor this"),
    ("2024 was fine", "2024 was fine"),
    ("a *b* [c](d)", "a \\*b\\* \\[c\\](d)"),
    ("bob\r\n- a list\n\n---\n2. of his own", "bob - a list --- 2. of his own"),  # one line
    ("\x1b[2Jcleared \x07\u202eevil", "\\[2Jcleared evil"),  # no escape sequence, no RLO
])
def test_markdown_shows_a_post_literally(said: str, shown: str) -> None:
    from monitor.reports.render import md_escape

    assert md_escape(said) == shown
