"""The outreach queue on SQLite and (when reachable) PostgreSQL: the state machine, grouping,
SLA, priority, assignment, replies, stats, and ``monitor queue`` end to end."""

from __future__ import annotations

import json
import threading
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import fixture_bytes
from loopback import LoopbackServer
from sqlalchemy import func, select

from monitor import cases as commands
from monitor import config as configuration
from monitor.backlash.events import case_launches
from monitor.cli.queue import queue
from monitor.errors import ConfigError
from monitor.model import Fetch, Flag, Post
from monitor.outbox import file_case
from monitor.queue import (
    Assignment,
    CaseError,
    QueuePolicy,
    SlaTimes,
    Team,
    load_replies,
    p90,
    priority,
    replies_for,
    thread_title,
)
from monitor.store import Store
from monitor.store.casework import CaseQueries
from monitor.store.schema import case_events, cases, flags

REPO = Path(__file__).resolve().parent.parent
NOW = datetime(2026, 11, 2, 9, 30, tzinfo=UTC)
TEAM = [{"name": "ana", "skills": ["billing", "churn"]}, {"name": "bo", "skills": ["backlash"]},
        {"name": "cy", "skills": []}]
NOBODY = QueuePolicy.of()
ROUND = QueuePolicy.of(team=TEAM)


class QStore(Store, CaseQueries):
    """Store with the queue mixed in, as the lead will wire it."""


@pytest.fixture
def store(store_url: str):
    opened = QStore(store_url)
    yield opened
    opened.close()


def file(store: QStore, external_id: str, *, thread: str = "t1", severity: str = "high",
         category: str | None = "backlash", now: datetime = NOW, policy: QueuePolicy = NOBODY,
         author: str | None = "ann", reach: int | None = None, vip: bool = False,
         published: datetime | None = None) -> int:
    """Save a post, flag it and file it, as the pipeline does; returns the case id."""
    post = Post(source="forum", external_id=external_id, url=f"https://f.test/{external_id}",
                author=author, title=f"Thread {thread}", text=f"post {external_id}\nline 2",
                published_at=published or now - timedelta(minutes=5), thread_id=thread,
                reach=reach)
    return file_post(store, post, severity=severity, category=category, now=now,
                     policy=policy, vip=vip)


def file_post(store: QStore, post: Post, *, severity: str = "high",
              category: str | None = "backlash", now: datetime = NOW,
              policy: QueuePolicy = NOBODY, vip: bool = False) -> int:
    """``post`` saved (once), flagged and filed into its thread's case; returns the case id."""
    store.save_fetch(post.source, "forum", Fetch((post,), None), now)
    stored = store.stored_post(post.source, post.external_id)
    assert stored is not None
    flag = Flag(severity=severity, rules=("r1",), reasons=(f"r1: says {post.external_id}",),
                category=category)
    with store.engine.begin() as db:
        db.execute(flags.insert().values(post_id=stored.id, severity=severity,
                                         category=category, rules=["r1"],
                                         reasons=list(flag.reasons), tags=[], flagged_at=now,
                                         updated_at=now))
        return file_case(db, post_id=stored.id, post=post, flag=flag, vip=vip, now=now,
                         group_key=f"thread:{post.source}:{post.thread_id or post.external_id}",
                         policy=policy)


def snapshot(store: QStore, case_id: int) -> tuple:
    with store.engine.connect() as db:
        row = db.execute(select(cases).where(cases.c.id == case_id)).one()
        events = db.execute(select(func.count()).select_from(case_events)
                            .where(case_events.c.case_id == case_id)).scalar_one()
    return tuple(row), events


# --- the state machine -----------------------------------------------------------------------

def into(store: QStore, state: str, n: int) -> int:
    """A fresh case in ``state`` (resolved ones have an assignee, dismissed ones do not)."""
    case_id = file(store, f"p{state}{n}", thread=f"{state}{n}")
    later = NOW + timedelta(minutes=1)
    if state in ("assigned", "responded", "resolved"):
        commands.assign(store, case_id, "ana", actor="lead", now=later, policy=NOBODY)
    if state in ("responded", "resolved"):
        commands.respond(store, case_id, actor="ana", now=later)
    if state == "resolved":
        commands.resolve(store, case_id, actor="ana", now=later)
    if state == "dismissed":
        commands.dismiss(store, case_id, "spam", actor="ana", now=later)
    return case_id


ALLOWED = {  # (state, action) -> the state after it; missing: illegal
    ("new", "assign"): "assigned", ("assigned", "assign"): "assigned",
    ("responded", "assign"): "responded",
    ("new", "claim"): "assigned", ("assigned", "claim"): "assigned",
    ("responded", "claim"): "responded",
    ("new", "respond"): "responded", ("assigned", "respond"): "responded",
    ("new", "resolve"): "resolved", ("assigned", "resolve"): "resolved",
    ("responded", "resolve"): "resolved",
    ("new", "dismiss"): "dismissed", ("assigned", "dismiss"): "dismissed",
    ("responded", "dismiss"): "dismissed",
    ("resolved", "reopen"): "assigned", ("dismissed", "reopen"): "new",
}


def act(store: QStore, case_id: int, action: str, now: datetime) -> object:
    if action == "assign":
        return commands.assign(store, case_id, "bo", actor="lead", now=now, policy=NOBODY)
    if action == "claim":
        return commands.claim(store, case_id, actor="cy", now=now, policy=NOBODY)
    if action == "dismiss":
        return commands.dismiss(store, case_id, "duplicate", actor="cy", now=now)
    if action == "reopen":
        return commands.reopen(store, case_id, actor="cy", now=now, policy=NOBODY)
    return getattr(commands, action)(store, case_id, actor="cy", now=now)


def test_state_machine_allows_exactly_the_table(store: QStore) -> None:
    later = NOW + timedelta(hours=1)
    for n, (state, action) in enumerate((s, a) for s in ("new", "assigned", "responded",
                                                         "resolved", "dismissed")
                                        for a in ("assign", "claim", "respond", "resolve",
                                                  "dismiss", "reopen")):
        case_id = into(store, state, n)
        before = snapshot(store, case_id)
        expected = ALLOWED.get((state, action))
        if expected is None:
            with pytest.raises(CaseError, match=f"case {case_id} is "):
                act(store, case_id, action, later)
            assert snapshot(store, case_id) == before, (state, action)  # nothing changed
        else:
            assert act(store, case_id, action, later).state == expected, (state, action)
            assert snapshot(store, case_id)[1] == before[1] + 1  # one event, who and when
            last = store.get_case(case_id, later).events[-1]
            assert last["at"] == later and last["actor"] in ("lead", "cy")


def test_illegal_transitions_explain_what_to_do(store: QStore) -> None:
    case_id = into(store, "dismissed", 0)
    with pytest.raises(CaseError, match=f"^case {case_id} is dismissed: reopen it before "
                                        "resolving it$"):
        commands.resolve(store, case_id, actor="x", now=NOW)
    with pytest.raises(CaseError, match="no case 999"):
        commands.respond(store, 999, actor="x", now=NOW)
    with pytest.raises(CaseError, match="needs a reason"):
        commands.dismiss(store, into(store, "new", 1), "  ", actor="x", now=NOW)


def test_respond_sets_first_response_once_and_reopen_keeps_the_assignee(store: QStore) -> None:
    case_id = into(store, "responded", 0)
    first = store.get_case(case_id, NOW).case.first_response_at
    commands.resolve(store, case_id, actor="ana", now=NOW + timedelta(hours=1))
    reopened = commands.reopen(store, case_id, actor="ana", now=NOW + timedelta(hours=2),
                               policy=NOBODY)
    assert (reopened.state, reopened.assignee, reopened.resolved_at) == ("assigned", "ana", None)
    again = commands.respond(store, case_id, actor="ana", now=NOW + timedelta(hours=3))
    assert again.first_response_at == first
    commands.note(store, case_id, "called them back", actor="ana", now=NOW + timedelta(hours=4))
    assert [n["detail"]["text"] for n in store.get_case(case_id, NOW).notes] == \
        ["called them back"]


def test_an_answer_recorded_as_given_before_the_case_opened_is_a_response_at_the_opening(
        store: QStore) -> None:
    """The demo recorded its answer two minutes before its case opened: the stats showed a
    median first response of -118 s."""
    case_id = into(store, "new", 0)
    opened = store.get_case(case_id, NOW).case.opened_at
    answered = commands.respond(store, case_id, actor="ana", now=opened - timedelta(minutes=2))
    assert answered.first_response_at == opened


# --- grouping, SLA, priority -----------------------------------------------------------------

def test_a_thread_that_keeps_flaring_updates_its_open_case(store: QStore) -> None:
    first = file(store, "a", severity="high")
    second = file(store, "b", severity="critical", now=NOW + timedelta(minutes=30))
    assert first == second
    detail = store.get_case(first, NOW)
    assert [p["post_id"] for p in detail.posts] and len(detail.posts) == 2
    assert detail.case.severity == "critical"  # raised, and the tighter SLA counts from now
    assert detail.case.due_at == NOW + timedelta(minutes=30, hours=2)
    assert [e["action"] for e in detail.events] == ["opened", "post added"]
    assert file(store, "c", thread="other") != first  # another thread, another case
    with store.engine.begin() as db:  # filing a post again changes nothing
        post = Post("forum", "a", "u", None, None, "t", NOW)
        again = file_case(db, post_id=detail.posts[0]["post_id"], post=post,
                          flag=Flag("low", (), ()), group_key="thread:forum:t1", vip=False,
                          now=NOW, policy=NOBODY)
    assert again == first and len(store.get_case(first, NOW).events) == 2
    commands.resolve(store, first, actor="ana", now=NOW + timedelta(hours=1))
    assert file(store, "d", now=NOW + timedelta(hours=2)) != first  # closed: a new case


def test_filing_at_once_from_many_monitors_opens_one_case(store: QStore) -> None:
    found: list[int] = []
    errors: list[BaseException] = []
    posts = []
    for i in range(6):
        post = Post("forum", f"x{i}", "u", "bo", "T", "angry", NOW, thread_id="hot")
        posts.append((store.save_fetch("forum", "forum", Fetch((post,), None), NOW).new[0],
                      post))
    barrier = threading.Barrier(len(posts))

    def run(post_id: int, post: Post) -> None:
        try:
            barrier.wait()
            with store.engine.begin() as db:
                found.append(file_case(db, post_id=post_id, post=post,
                                       flag=Flag("high", ("r",), ("why",)), vip=False,
                                       group_key="thread:forum:hot", now=NOW, policy=ROUND))
        except BaseException as error:  # noqa: BLE001 (reported below)
            errors.append(error)

    threads = [threading.Thread(target=run, args=pair) for pair in posts]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert not errors and len(set(found)) == 1
    assert store.get_case(found[0], NOW).case.posts == 6


def test_sla_due_and_overdue_follow_the_clock(store: QStore) -> None:
    critical = file(store, "a", severity="critical")
    low = file(store, "b", thread="t2", severity="low")
    assert store.get_case(critical, NOW).case.due_at == NOW + timedelta(hours=2)
    assert store.get_case(low, NOW).case.due_at == NOW + timedelta(days=3)
    at = NOW + timedelta(hours=3)
    assert [c.id for c in store.list_cases(now=at, overdue=True)] == [critical]
    assert store.list_cases(now=at, severity="critical")[0].overdue
    assert not store.list_cases(now=NOW + timedelta(hours=1), overdue=True)
    commands.respond(store, critical, actor="ana", now=at)  # late, but answered: no longer overdue
    assert not store.list_cases(now=at, overdue=True)
    custom = QueuePolicy.of(sla={"low": "1h"})
    assert store.get_case(file(store, "c", thread="t3", severity="low", policy=custom),
                          NOW).case.due_at == NOW + timedelta(hours=1)


def test_priority_orders_the_list(store: QStore) -> None:
    assert priority("critical", None, False) == 8
    assert priority("high", 99, False) == 12  # 4 * (1 + log10(100))
    assert priority("low", 0, True) == 2
    low_vip = file(store, "a", thread="1", severity="low", vip=True)
    high = file(store, "b", thread="2", severity="high")
    viral = file(store, "c", thread="3", severity="medium", reach=9999)  # 2 * 5 = 10
    critical = file(store, "d", thread="4", severity="critical")
    assert [c.id for c in store.list_cases(now=NOW)] == [viral, critical, high, low_vip]


def test_a_severity_set_by_hand_moves_the_priority_with_it(store: QStore) -> None:
    """Raised to critical by hand, a case ranks as a critical one (it stayed behind every high
    case, 4.0 against 8.0); its reach and VIP factors stay, and lowered it falls back."""
    raised = file(store, "a", thread="1", severity="high", vip=True)  # 4 * 2 = 8
    high = file(store, "b", thread="2", severity="high", reach=99)   # 4 * 3 = 12
    assert [c.id for c in store.list_cases(now=NOW)] == [high, raised]
    case = commands.set_severity(store, raised, "critical", actor="bo", now=NOW, policy=NOBODY)
    assert case.severity == "critical" and case.priority == 16  # 8 * 2
    assert [c.id for c in store.list_cases(now=NOW)] == [raised, high]
    assert commands.set_severity(store, raised, "low", actor="bo", now=NOW,
                                 policy=NOBODY).priority == 2  # 1 * 2


# --- how a case is shown ---------------------------------------------------------------------

def test_a_case_is_shown_by_its_most_severe_post_the_latest_of_equals(store: QStore) -> None:
    case_id = file(store, "praise", severity="low", category="praise", author="fan",
                   published=NOW - timedelta(hours=2))
    file(store, "angry-1", severity="critical", author="early", published=NOW - timedelta(hours=1),
         now=NOW + timedelta(minutes=1))
    assert file(store, "angry-2", severity="critical", author="late", published=NOW,
                now=NOW + timedelta(minutes=2)) == case_id
    file(store, "calmer", severity="high", author="later", published=NOW + timedelta(hours=1),
         now=NOW + timedelta(minutes=3))
    listed = store.list_cases(now=NOW)[0]
    shown = store.get_case(case_id, NOW)
    worst = next(p for p in shown.posts if p["author"] == "late")
    for case in (listed, shown.case, commands.note(store, case_id, "x", actor="a", now=NOW)):
        assert (case.id, case.author, case.post_id, case.url) == (
            case_id, "late", worst["post_id"], "https://f.test/angry-2")
        assert case.text == "post angry-2\nline 2" and case.title == "Thread t1"
    assert [r["id"] for r in replies_for(shown, load_replies(REPO / "rules" / "replies.yaml"))
            if "Hi late," in r["text"]] == ["backlash-own-it", "backlash-workaround"]


def test_a_case_takes_its_threads_title_from_the_threads_own_post(store: QStore) -> None:
    story = Post("hn", "41", "https://hn.test/41", "pg", "Acme ships a new editor", "Link.",
                 NOW - timedelta(hours=3))
    store.save_fetch("hn", "hackernews", Fetch((story,), None), NOW)
    reply = Post("hn", "43", "https://hn.test/43", "critic", None, "Worst editor ever.",
                 NOW - timedelta(hours=1), thread_id="41", parent_id="41")
    case_id = file_post(store, reply, severity="critical")
    assert store.get_case(case_id, NOW).case.title == "Acme ships a new editor"
    alone = Post("hn", "50", "https://hn.test/50", "x", None, "No title, no thread.", NOW)
    assert store.get_case(file_post(store, alone), NOW).case.title is None


def test_blog_comment_cases_are_titled_by_the_post_they_comment_on(
        store: QStore, server: LoopbackServer) -> None:
    """WordPress's site-wide comment feed titles each comment "Comment on <post> by
    <commenter>": the case is the post's, whoever commented first."""
    from monitor.collectors.http import HttpClient
    from monitor.collectors.rss import RssCollector, RssOptions

    url = server.serve("/comments/feed/", body=fixture_bytes("own/wordpress/comments-feed.xml"))
    with HttpClient("feedback-monitor-tests/1.0", retries=0, sleep=lambda _: None) as http:
        carol, grace, dave = RssCollector("blog", RssOptions(url=url), http).collect(None).posts
    assert carol.thread_id == grace.thread_id
    case_id = file_post(store, carol, severity="low", category="praise")
    assert file_post(store, grace, severity="critical", now=NOW + timedelta(minutes=1)) == \
        case_id
    case = store.get_case(case_id, NOW).case
    assert (case.title, case.author) == ("Widget 2.0 is out", "Grace")
    other = store.get_case(file_post(store, dave), NOW).case
    assert other.title == "Planned maintenance on Saturday"


def test_thread_title_takes_only_the_commenter_off() -> None:
    assert thread_title("Comment on Stand by me by Grace", "Grace") == "Stand by me"
    assert thread_title("Comment on Stand by me by Grace", None) == "Stand by me"
    assert thread_title("Comment on Stand by me by Grace", "Carol") == \
        "Comment on Stand by me by Grace"  # not the form we know: left as it is
    assert thread_title("Comment on X by Y", "Y", own="The post") == "The post"
    assert thread_title(" by Grace", "Grace") == " by Grace"
    assert thread_title("Comment on  by Grace", "Grace") == "Comment on  by Grace"
    assert thread_title("Comment on the redesign", None) == "Comment on the redesign"
    assert thread_title(None, "Grace") is None


# --- assignment ------------------------------------------------------------------------------

def counts(store: QStore) -> dict[str | None, int]:
    found: dict[str | None, int] = {}
    for case in store.list_cases(now=NOW):
        found[case.assignee] = found.get(case.assignee, 0) + 1
    return found


def test_round_robin_is_fair_and_skips_people_away(store: QStore) -> None:
    for i in range(20):
        file(store, f"p{i}", thread=str(i), policy=ROUND)
    assert counts(store) == {"ana": 7, "bo": 7, "cy": 6}
    assert all(c.state == "assigned" for c in store.list_cases(now=NOW))
    commands.set_away(store, "bo", True, now=NOW, policy=ROUND)
    for i in range(20, 26):
        file(store, f"p{i}", thread=str(i), policy=ROUND)
    assert counts(store) == {"ana": 10, "bo": 7, "cy": 9}
    commands.set_away(store, "bo", False, now=NOW, policy=ROUND)
    assert store.get_case(file(store, "back", thread="b", policy=ROUND), NOW).case.assignee \
        == "bo"  # back: the next case, not a backlog
    config_away = QueuePolicy.of(team=[*TEAM[:2], {"name": "cy", "away": True}])
    assert {store.get_case(file(store, f"q{i}", thread=f"q{i}", policy=config_away),
                           NOW).case.assignee for i in range(4)} == {"ana", "bo"}
    with pytest.raises(CaseError, match="'zed' is not on the team"):
        commands.assign(store, 1, "zed", actor="lead", now=NOW, policy=ROUND)
    with pytest.raises(CaseError, match="cy is away"):
        commands.assign(store, 1, "cy", actor="lead", now=NOW, policy=config_away)
    with pytest.raises(CaseError, match="not on the team"):
        commands.set_away(store, "zed", True, now=NOW, policy=ROUND)


def test_skills_mode_prefers_people_with_the_category(store: QStore) -> None:
    skills = QueuePolicy.of(team=TEAM, assignment="skills")
    churn = [file(store, f"c{i}", thread=f"c{i}", category="churn", policy=skills)
             for i in range(3)]
    assert {store.get_case(c, NOW).case.assignee for c in churn} == {"ana"}
    other = [file(store, f"o{i}", thread=f"o{i}", category="praise", policy=skills)
             for i in range(3)]  # nobody has the skill: everyone present, in turn
    assert sorted(store.get_case(c, NOW).case.assignee for c in other) == ["ana", "bo", "cy"]
    commands.set_away(store, "ana", True, now=NOW, policy=skills)
    assert store.get_case(file(store, "c9", thread="c9", category="churn", policy=skills),
                          NOW).case.assignee in ("bo", "cy")
    none = QueuePolicy.of(team=TEAM, assignment="none")
    assert store.get_case(file(store, "n", thread="n", policy=none), NOW).case.state == "new"


def test_importing_the_queue_leaves_the_stores_cases_table_alone() -> None:
    import monitor.store
    from monitor.store import schema

    assert monitor.store.cases is schema.cases


def test_policy_config_mistakes_are_config_errors() -> None:
    with pytest.raises(ConfigError, match="config.yaml: team.*named twice: ana"):
        QueuePolicy.of(team=[{"name": "ana"}, {"name": "ana"}])
    with pytest.raises(ConfigError, match="sla.high: not a duration"):
        QueuePolicy.of(sla={"high": "soon"})
    assert QueuePolicy.of(team=TEAM).assignment == "round-robin"
    assert NOBODY.assignment == "none" and NOBODY.sla.critical == 7200


# --- reminders, stats ------------------------------------------------------------------------

def test_untouched_critical_cases_are_repeated(store: QStore) -> None:
    critical = file(store, "a", severity="critical")
    file(store, "b", thread="2", severity="high")
    answered = file(store, "c", thread="3", severity="critical")
    commands.respond(store, answered, actor="ana", now=NOW)
    assert not store.untouched_critical(NOW + timedelta(minutes=59), 3600)
    assert [c.id for c in store.untouched_critical(NOW + timedelta(hours=1), 3600)] == \
        [critical]
    store.remind(critical, [], NOW + timedelta(hours=1))  # reminded, to nobody
    assert not store.untouched_critical(NOW + timedelta(hours=1, minutes=30), 3600)
    assert store.untouched_critical(NOW + timedelta(hours=2), 3600)


def test_stats_on_known_durations(store: QStore) -> None:
    for i, minutes in enumerate([10, 20, 30, 40, 50, 60, 70, 80, 90, 600]):
        case_id = file(store, f"h{i}", thread=f"h{i}", severity="high")
        commands.respond(store, case_id, actor="ana", now=NOW + timedelta(minutes=minutes))
        if i < 4:
            commands.resolve(store, case_id, actor="ana", now=NOW + timedelta(hours=i + 1))
    file(store, "late", thread="late", severity="critical")
    rows = {r.severity: r for r in store.queue_stats(NOW + timedelta(hours=5))}
    high = rows["high"]
    assert (high.open, high.overdue) == (6, 0)
    assert high.first_response_median == 55 * 60 and high.first_response_p90 == 90 * 60
    assert high.resolution_median == 2.5 * 3600 and high.resolution_p90 == 4 * 3600
    assert (rows["critical"].open, rows["critical"].overdue) == (1, 1)
    assert rows["critical"].first_response_median is None
    assert p90([1.0]) == 1.0 and p90([]) is None


# --- replies ---------------------------------------------------------------------------------

def test_replies_fit_the_category_and_are_filled(store: QStore) -> None:
    replies = load_replies(REPO / "rules" / "replies.yaml")
    assert (REPO / "monitor/demo/rules/replies.yaml").read_text() == \
        (REPO / "rules/replies.yaml").read_text()
    detail = store.get_case(file(store, "a", author=None), NOW)
    filled = replies_for(detail, replies, "the new editor")
    assert filled and {r["id"] for r in filled} <= {"backlash-own-it", "backlash-workaround"}
    assert filled[0]["text"].startswith("Hi there,") and "the new editor" in filled[0]["text"]
    assert "{" not in "".join(r["text"] for r in filled)
    abuse = replies_for(store.get_case(file(store, "b", thread="2", category="abuse"), NOW),
                        replies)
    assert [r["id"] for r in abuse] == ["abuse-moderation"]
    assert "Do not answer" in abuse[0]["text"] and "Thread 2" in abuse[0]["text"]
    other = replies_for(store.get_case(file(store, "c", thread="3", category=None), NOW),
                        replies)
    assert [r["id"] for r in other] == ["default-acknowledge"]


def test_a_storm_case_gets_a_public_statement_not_a_personal_reply(store: QStore) -> None:
    storm = Post("event:New editor", "storm:2026-11-02T08", "https://f.test/worst", None,
                 "Backlash storm: New editor", "42 negative posts about New editor in the "
                 "hour to 09:00", NOW - timedelta(hours=1), thread_id="storm:New editor")
    detail = store.get_case(file_post(store, storm, severity="critical"), NOW)
    assert detail.case.storm and detail.case.event == "New editor"
    filled = replies_for(detail, load_replies(REPO / "rules" / "replies.yaml"), "Dark mode")
    assert [r["id"] for r in filled] == ["storm-statement", "storm-status"]
    text = " ".join(r["text"] for r in filled)
    assert "about New editor" in text and "Dark mode" not in text  # the storm's own launch
    assert "Hi " not in text and "{" not in text
    assert not store.get_case(file(store, "p"), NOW).case.storm


def test_a_reply_names_the_launch_the_case_is_about_never_just_the_latest(
        store: QStore, make_project) -> None:
    """Two launches: a case about the older one gets its name in {event}, one about neither
    gets "the latest update" (it used to get the latest launch, whatever it was about)."""
    config = configuration.load(make_project([], None, events=[
        {"name": "New editor", "date": "2026-10-20T09:00", "keywords": ["new editor"]},
        {"name": "Dark mode", "date": "2026-10-30T09:00", "keywords": ["dark mode"]}]))
    replies = load_replies(REPO / "rules" / "replies.yaml")

    def event_of(external_id: str, text: str) -> str:
        post = Post("forum", external_id, f"https://f.test/{external_id}", "ann",
                    f"Thread {external_id}", text, NOW - timedelta(minutes=5),
                    thread_id=external_id)
        detail = store.get_case(file_post(store, post), NOW)
        launches = case_launches(config, detail.case.event, detail.case.opened_at,
                                 detail.posts)
        return replies_for(detail, replies, next(iter(launches), None))[0]["text"]

    # NOW is within both launches' 14 days
    assert "New editor" in event_of("a", "The new editor lost my drafts.")
    unrelated = event_of("b", "My invoice is wrong again.")
    assert "the latest update" in unrelated and "Dark mode" not in unrelated
    both = event_of("c", "The new editor and dark mode both broke my layout.")
    assert "Dark mode" in both  # about both: the latest of them


def test_a_name_with_line_breaks_fills_a_reply_on_one_line(store: QStore) -> None:
    """An author "name\\r\\nBcc: ..." split the template's greeting over two lines."""
    post = Post("forum", "nl", "https://f.test/nl", "mal\r\nBcc: x@example.com\u202e",
                "Two\nlines", "The new editor lost my drafts.", NOW - timedelta(minutes=5),
                thread_id="nl")
    detail = store.get_case(file_post(store, post), NOW)
    text = replies_for(detail, load_replies(REPO / "rules" / "replies.yaml"))[0]["text"]
    assert text.startswith("Hi mal Bcc: x@example.com,") and "\u202e" not in text


def test_a_broken_replies_file_names_the_file_and_key(tmp_path: Path) -> None:
    bad = tmp_path / "replies.yaml"
    bad.write_text("replies:\n  - id: x\n    category: angry\n    title: T\n"
                   "    text: 'Hi {name}'\n  - id: y\n    title: T\n")
    with pytest.raises(ConfigError) as caught:
        load_replies(bad, "rules/replies.yaml")
    message = str(caught.value)
    assert "rules/replies.yaml: replies[0].text: unknown placeholder {name}" in message
    assert "rules/replies.yaml: replies[1].text: Field required" in message
    bad.write_text("replies: nope\n")
    with pytest.raises(ConfigError, match="replies.yaml: replies: must hold a list"):
        load_replies(bad, "replies.yaml")


# --- monitor queue ... -----------------------------------------------------------------------

class WithQueue(configuration.MainConfig):
    """config.yaml's keys as the lead will add them."""

    team: Team = []
    sla: SlaTimes = SlaTimes()
    assignment: Assignment | None = None


@pytest.fixture
def project(make_project, store_url: str, monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setattr(configuration, "MainConfig", WithQueue)
    monkeypatch.delenv("MONITOR_USER", raising=False)
    path = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}],
                        store=store_url, team=TEAM)
    opened = QStore(configuration.load(path).store_url)
    yield path, opened
    opened.close()


def cli(path: Path, *args: str) -> object:
    return CliRunner().invoke(queue, [args[0], "--config", str(path), *args[1:]])


def test_cli_lists_an_empty_queue(project) -> None:
    path, _ = project
    listed = cli(path, "list")
    assert listed.exit_code == 0, listed.output
    assert listed.stdout.strip() == "no cases"


HOSTILE_TITLE = ("see [/bold] and [link=https://evil.test]click[/link] \x1b[2J\x1b]0;pwned\x07"
                 "\rgone \u202eevil")


def test_cli_prints_a_hostile_post_as_text_not_as_markup_or_escapes(project) -> None:
    """A post's "[/bold]" crashed `queue list` (rich's markup), its "[link=...]" became a
    link, and its escape sequences reached the terminal (clear the screen, retitle it)."""
    path, store = project
    post = Post("forum", "evil", "https://f.test/evil", "mal\x1b[31lory", HOSTILE_TITLE,
                "text \x1b[8mhidden\x1b[0m \u2066isolated\u2069", datetime.now(UTC),
                thread_id="evil")
    case_id = file_post(store, post, now=datetime.now(UTC))
    for args in (("list",), ("show", str(case_id)), ("list", "--plain")):
        shown = CliRunner().invoke(queue, [args[0], "--config", str(path), *args[1:]],
                                   env={"COLUMNS": "300"})
        assert shown.exit_code == 0, (args, shown.output)
        assert "see [/bold] and [link=https://evil.test]click[/link]" in shown.stdout, args
        for unsafe in ("\x1b", "\x07", "\r", "\u202e", "\u2066"):
            assert unsafe not in shown.stdout, (args, unsafe, shown.stdout)


def test_cli_shows_a_name_with_line_breaks_on_its_own_line(project) -> None:
    """An author "mal\\nBcc: x@example.com" wrapped `queue list`'s row onto a second line
    and split `queue show`'s lines, where it could pass for a line of its own."""
    path, store = project
    post = Post("forum", "nl", "https://f.test/nl", "mal\nBcc: x@example.com", "Two\nlines",
                "text", datetime.now(UTC), thread_id="nl")
    case_id = file_post(store, post, now=datetime.now(UTC))
    listed = CliRunner().invoke(queue, ["list", "--config", str(path)], env={"COLUMNS": "200"})
    assert listed.exit_code == 0 and len(listed.stdout.splitlines()) == 2, listed.stdout
    shown = cli(path, "show", str(case_id)).stdout
    assert "Two lines\nshown by #" in shown and "mal Bcc: x@example.com on forum" in shown
    assert not any(line.startswith("Bcc:") for line in shown.splitlines()), shown


def test_cli_end_to_end(project) -> None:
    path, store = project
    old = datetime.now(UTC) - timedelta(hours=3)
    first = file(store, "a", severity="critical", now=old, policy=ROUND)
    second = file(store, "b", thread="2", severity="low", policy=ROUND, now=datetime.now(UTC))
    listed = cli(path, "list", "--json")
    assert listed.exit_code == 0, listed.output
    rows = json.loads(listed.stdout)
    assert [r["id"] for r in rows] == [first, second]
    assert rows[0]["overdue"] and rows[0]["assignee"] == "ana" and rows[0]["posts"] == 1
    assert rows[0]["opened_at"] == old.isoformat()
    assert "OVERDUE" in cli(path, "list").stdout
    assert json.loads(cli(path, "list", "--json", "--overdue").stdout)[0]["id"] == first
    mine = cli(path, "list", "--mine", "--as", "bo", "--json")
    assert [r["id"] for r in json.loads(mine.stdout)] == [second]

    assert cli(path, "claim", str(first), "--as", "cy").stdout == \
        f"case {first}: assigned, assigned to cy\n"
    assert cli(path, "note", str(first), "asked them for a screenshot", "--as", "cy") \
        .exit_code == 0
    assert cli(path, "respond", str(first), "--as", "cy").exit_code == 0
    shown = cli(path, "show", str(first), "--as", "cy")
    assert shown.exit_code == 0
    for expected in ("https://f.test/a", "> post a", "why: r1: says a", "asked them for a",
                     "backlash-own-it", "Hi ann,"):
        assert expected in shown.stdout, expected
    detail = json.loads(cli(path, "show", str(first), "--json").stdout)
    assert [e["action"] for e in detail["events"]] == ["opened", "assigned", "assigned",
                                                       "note", "responded"]
    assert detail["events"][1]["actor"] is None and detail["events"][2]["actor"] == "cy"
    assert detail["notes"][0]["detail"]["text"] == "asked them for a screenshot"
    assert detail["case"]["state"] == "responded" and detail["replies"]

    assert cli(path, "resolve", str(first)).exit_code == 0
    wrong = cli(path, "dismiss", str(first), "--reason", "spam")
    assert wrong.exit_code == 1
    assert wrong.stderr == f"error: case {first} is resolved: reopen it before dismissing it\n"
    assert cli(path, "dismiss", str(second)).exit_code == 2  # --reason is required
    assert cli(path, "show", "999").stderr == "error: no case 999\n"
    assert cli(path, "assign", str(second), "zed").exit_code == 1
    assert cli(path, "away", "bo").stdout == "bo is away\n"
    assert "bo is away" in cli(path, "assign", str(second), "bo").stderr
    assert cli(path, "back", "bo").exit_code == 0
    assert cli(path, "assign", str(second), "bo").exit_code == 0
    assert cli(path, "reopen", str(first)).stdout == f"case {first}: assigned, assigned to cy\n"
    stats = json.loads(cli(path, "stats", "--json").stdout)
    assert [s["severity"] for s in stats] == ["critical", "high", "medium", "low"]
    assert stats[0]["first_response_median"] is not None
    assert "reply p50" in cli(path, "stats").stdout
    everything = json.loads(cli(path, "list", "--state", "all", "--json").stdout)
    assert len(everything) == 2


def test_cli_without_a_team_lets_anyone_take_cases(make_project, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_USER", "dee")
    path = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}])
    store = QStore(configuration.load(path).store_url)
    try:
        case_id = file(store, "a")
        assert cli(path, "list").stdout.count("\n") >= 2
        assert cli(path, "claim", str(case_id)).stdout == \
            f"case {case_id}: assigned, assigned to dee\n"
        assert cli(path, "list", "--mine", "--assignee", "x").exit_code == 2
    finally:
        store.close()


def test_cli_respond_refuses_an_unknown_template_naming_the_known_ones(project) -> None:
    path, store = project
    case_id = file(store, "a")
    before = snapshot(store, case_id)
    wrong = cli(path, "respond", str(case_id), "--template", "nope", "--as", "ana")
    assert wrong.exit_code == 2, wrong.output
    assert "unknown reply template 'nope'" in wrong.stderr
    assert "backlash-own-it" in wrong.stderr and "Traceback" not in wrong.output
    assert snapshot(store, case_id) == before  # nothing recorded
    said = cli(path, "respond", str(case_id), "--template", "backlash-own-it", "--as", "ana")
    assert said.exit_code == 0, said.output
    events = json.loads(cli(path, "show", str(case_id), "--json").stdout)["events"]
    assert events[-1]["detail"] == {"template": "backlash-own-it"}


@pytest.mark.parametrize("name", [" ", "a\nb", " ana", "ana ", "a\tb", "a\x1bb"])
def test_cli_refuses_blank_and_control_character_names(make_project, name: str,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("MONITOR_USER", raising=False)
    path = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}])
    store = QStore(configuration.load(path).store_url)
    try:
        case_id = file(store, "a")
        for args in (("claim", str(case_id), "--as", name),
                     ("assign", str(case_id), name, "--as", "dee"),
                     ("away", name, "--as", "dee")):
            refused = cli(path, *args)
            assert refused.exit_code == 2, (args, refused.output)
            assert "name cannot" in refused.stderr and "Traceback" not in refused.output
        monkeypatch.setenv("MONITOR_USER", name)
        assert cli(path, "claim", str(case_id)).exit_code == 2
        assert store.get_case(case_id, datetime.now(UTC)).case.assignee is None
    finally:
        store.close()


def test_cli_lists_nothing_calmly_on_a_fresh_install_and_for_any_empty_filter(
        make_project, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MONITOR_USER", "dee")
    path = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}])
    for args in ((), ("--overdue",), ("--state", "all")):  # no store file yet, then empty
        assert cli(path, "list", *args).stdout == "no cases\n"
        assert json.loads(cli(path, "list", "--json", *args).stdout) == []
    store = QStore(configuration.load(path).store_url)
    try:
        file(store, "a", now=datetime.now(UTC))  # one open case, high, new, unassigned
        for args in (("--overdue",), ("--severity", "low"), ("--state", "dismissed"),
                     ("--assignee", "zed"), ("--mine",), ("--overdue", "--severity", "high")):
            shown = cli(path, "list", *args)
            assert (shown.exit_code, shown.stdout) == (0, "no cases\n"), args
            assert json.loads(cli(path, "list", "--json", *args).stdout) == [], args
        assert len(json.loads(cli(path, "list", "--json").stdout)) == 1
    finally:
        store.close()


def test_cli_shows_a_case_by_its_worst_post(project) -> None:
    path, store = project
    now = datetime.now(UTC)
    case_id = file(store, "thanks", severity="low", category="praise", author="fan", now=now)
    file(store, "furious", severity="critical", author="irate", now=now + timedelta(seconds=1))
    [row] = json.loads(cli(path, "list", "--json").stdout)
    assert (row["id"], row["author"], row["text"], row["category"]) == (
        case_id, "irate", "post furious\nline 2", "backlash")
    assert row["url"] == "https://f.test/furious" and row["title"] == "Thread t1"
    assert " irate " in cli(path, "list").stdout
    shown = cli(path, "show", str(case_id)).stdout
    assert f"shown by #{row['post_id']}, irate on forum: post furious line 2" in shown
    assert "Hi irate," in shown and "Say thanks" not in shown
    assert json.loads(cli(path, "show", str(case_id), "--json").stdout)["case"] == row


def _table(output: str) -> tuple[list[str], list[dict[str, str]]]:
    """The header's column names and each row's cells, cut at the header's column starts."""
    header, *lines = output.splitlines()
    names = header.split()
    starts = [header.index(f"{n} ") if f"{n} " in header else header.index(n) for n in names]
    ends = [*starts[1:], None]
    return names, [{n: line[a:b].strip() for n, a, b in zip(names, starts, ends, strict=True)}
                   for line in lines]


@pytest.mark.parametrize("width", [80, 120, 200])
def test_cli_list_fits_the_terminal_by_dropping_columns(project, width: int) -> None:
    path, store = project
    now = datetime.now(UTC)
    title = "Thread " + " ".join(f"word{n}" for n in range(14))  # 94 characters
    overdue = file(store, "a", thread=title.removeprefix("Thread "), severity="critical",
                   author="a-rather-long-author-name-indeed", now=now - timedelta(hours=3),
                   policy=ROUND)
    commands.assign(store, overdue, "cy", actor="lead", now=now, policy=ROUND)
    viral = file(store, "b", thread="2", severity="low", now=now, reach=10**9)  # prio 10.0
    listed = CliRunner().invoke(queue, ["list", "--config", str(path)],
                                env={"COLUMNS": str(width)})
    assert listed.exit_code == 0, listed.output
    names, rows = _table(listed.stdout)
    assert all(len(line) <= width for line in listed.stdout.splitlines()), listed.stdout
    assert names[:3] == ["id", "severity", "state"] and names[-1] == "title"
    expected = {80: ["id", "severity", "state", "due", "author", "title"],
                120: ["id", "severity", "state", "prio", "assignee", "due", "posts", "author",
                      "title"]}
    assert names == expected.get(width, expected[120])
    assert [(r["id"], r["severity"], r["state"]) for r in rows] == [
        (str(viral), "low", "new"), (str(overdue), "critical", "assigned")]  # never cut
    shown = rows[1]["title"]
    assert len(shown) >= 20 and title.startswith(shown.removesuffix(" …"))
    assert (shown == title) == (width == 200)
    assert rows[1]["due"].startswith("OVERDUE ") and rows[0]["title"] == "Thread 2"


@pytest.mark.parametrize("width", [20, 35, 45])
def test_cli_list_on_a_narrow_terminal_keeps_id_severity_state_and_20_of_title(
        project, width: int) -> None:
    """Below what fits, rich cut the id to '…' and the severity to 'critic…' (print's
    width= is capped at the terminal's): the lines are longer than the terminal instead."""
    path, store = project
    now = datetime.now(UTC)
    case = file(store, "a", thread="Thread " + " ".join(f"word{n}" for n in range(14)),
                severity="critical", now=now, policy=ROUND)
    listed = CliRunner().invoke(queue, ["list", "--config", str(path)],
                                env={"COLUMNS": str(width)})
    assert listed.exit_code == 0, listed.output
    names, rows = _table(listed.stdout)
    assert names == ["id", "severity", "state", "title"]
    assert [(r["id"], r["severity"], r["state"]) for r in rows] == [
        (str(case), "critical", "assigned")]  # ROUND assigns it
    assert len(rows[0]["title"]) >= 20, listed.stdout
