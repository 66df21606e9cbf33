"""Did the answer win them back (issue 18): the follow-up's rules on made-up posts, then the
whole loop on SQLite and PostgreSQL: a loopback forum where one author is won back, one stays
angry (and reopens their case), one leaves, one goes quiet; names linked across sources; and
the figures of ``monitor queue stats``."""

from __future__ import annotations

import json
import shutil
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import pytest
from click.testing import CliRunner
from conftest import REPO
from loopback import LoopbackServer

from monitor import cases, followup
from monitor import config as configuration
from monitor.cli import main
from monitor.followup import (
    GONE_QUIET,
    STILL_UNHAPPY,
    TOO_EARLY,
    WON_BACK,
    Seen,
    angry_again,
    decide,
    unhappy,
)
from monitor.pipeline import run_once
from monitor.store import Store

T0 = datetime(2026, 11, 2, 12, 0, tzinfo=UTC)
ENDS = T0 + timedelta(days=30)


def seen(n: int, compound: float, complaint: float = 0.0, *, hours: float = 1.0,
         churn: float = 0.0, angry: bool = False, category: str | None = None,
         thread: str = "forum:t1") -> Seen:
    """Post ``n``, ``hours`` after T0 (negative: before the reply)."""
    return Seen(n, T0 + timedelta(hours=hours), compound, complaint, churn, angry,
                category is not None, category, thread)


BEFORE = [seen(1, -0.8, 0.9, hours=-5, category="complaint")]


def verdict(after: list[Seen], now: datetime = T0 + timedelta(days=2),
            before: list[Seen] = BEFORE) -> followup.Verdict:
    return decide(before, after, responded_at=T0, window_ends_at=ENDS, now=now)


# --- the rules -------------------------------------------------------------------------------

def test_a_clearly_happier_post_wins_them_back_before_the_window_ends() -> None:
    found = verdict([seen(2, 0.9, 0.1)])
    assert (found.outcome, found.decided) == (WON_BACK, True)
    assert found.evidence["shown_by"] == [2]
    assert found.evidence["before"]["compound"] == -0.8
    assert found.evidence["after"] == {"posts": 1, "ids": [2], "compound": 0.9,
                                       "complaint": 0.1}


@pytest.mark.parametrize(("compound", "complaint", "outcome"), [
    (0.05, 0.9, WON_BACK),       # positive, and 0.85 up from -0.8: clearly better
    (0.049, 0.1, TOO_EARLY),     # not positive on average: not yet
])
def test_won_back_needs_a_positive_mean(compound: float, complaint: float,
                                        outcome: str) -> None:
    before = [seen(1, -0.8, 0.95, hours=-5, category="complaint")]
    assert verdict([seen(2, compound, min(complaint, 0.49))], before=before).outcome == outcome


@pytest.mark.parametrize(("before_compound", "outcome"), [
    (-0.25, WON_BACK),    # 0.1 - (-0.25) = 0.35: clearly better
    (-0.15, TOO_EARLY),   # 0.25 up only, complaint the same: noise
])
def test_won_back_needs_a_clear_change(before_compound: float, outcome: str) -> None:
    before = [seen(1, before_compound, 0.4, hours=-5, category="complaint")]
    assert verdict([seen(2, 0.1, 0.4)], before=before).outcome == outcome


def test_a_fall_in_complaint_alone_is_a_clear_change() -> None:
    before = [seen(1, 0.0, 0.7, hours=-5, category="complaint")]
    assert verdict([seen(2, 0.1, 0.4)], before=before).outcome == WON_BACK
    assert verdict([seen(2, 0.1, 0.41)], before=before).outcome == TOO_EARLY


def test_a_case_that_was_not_unhappy_only_has_to_stay_so() -> None:
    before = [seen(1, 0.6, 0.0, hours=-5, category="praise")]
    assert verdict([seen(2, 0.3)], before=before).outcome == WON_BACK


@pytest.mark.parametrize(("post", "why"), [
    (seen(2, 0.5, angry=True), "angry"),
    (seen(2, 0.2, churn=0.5), "talks of leaving"),
    (seen(2, 0.2, 0.5), "reports a problem"),
    (seen(2, -0.5), "clearly negative"),
    (seen(2, 0.3, category="unhappy"), "flagged unhappy"),
])
def test_one_unhappy_post_after_the_reply_decides_still_unhappy(post: Seen, why: str) -> None:
    found = verdict([seen(3, 0.9), post])
    assert (found.outcome, found.decided) == (STILL_UNHAPPY, True)
    assert found.evidence["shown_by"] == [2] and found.evidence["why"] == [f"#2: {why}"]


@pytest.mark.parametrize("post", [seen(2, 0.2, churn=0.49), seen(2, 0.2, 0.49),
                                  seen(2, -0.49), seen(2, 0.9, category="praise")])
def test_just_under_the_lines_is_not_unhappy(post: Seen) -> None:
    assert unhappy(post) is None


def test_talk_of_leaving_then_silence_is_still_unhappy_with_churn_evidence() -> None:
    found = verdict([seen(2, -0.2, 0.47, churn=1.0)], now=ENDS + timedelta(days=1))
    assert found.outcome == STILL_UNHAPPY and found.evidence["churn"] == [2]


def test_silence_for_the_whole_window_is_gone_quiet_and_not_before() -> None:
    assert verdict([], now=ENDS - timedelta(seconds=1)).outcome == TOO_EARLY
    found = verdict([], now=ENDS)
    assert (found.outcome, found.decided) == (GONE_QUIET, True)


def test_posts_outside_the_window_do_not_count() -> None:
    late = seen(2, 0.9, hours=30 * 24 + 1)
    early = seen(3, -0.9, angry=True, hours=-1)  # before the reply
    assert verdict([late, early], now=ENDS + timedelta(days=1)).outcome == GONE_QUIET


def test_posting_but_never_clearly_happier_ends_still_unhappy() -> None:
    after = [seen(2, -0.1, 0.3)]
    assert verdict(after).outcome == TOO_EARLY
    found = verdict(after, now=ENDS)
    assert found.outcome == STILL_UNHAPPY and found.evidence["shown_by"] == [2]


def test_angry_again_about_the_same_thread_or_category_only_once() -> None:
    before = [seen(1, -0.8, 0.9, hours=-5, category="complaint", thread="forum:t1")]
    same_thread = seen(2, -0.9, angry=True, category="angry", thread="forum:t1")
    same_kind = seen(3, -0.5, 0.9, category="complaint", thread="forum:t9")
    other = seen(4, -0.9, angry=True, category="angry", thread="forum:t8")
    calm = seen(5, 0.1, thread="forum:t1")  # in the thread, not flagged
    found = angry_again(7, "complaint", before, [same_thread, same_kind, other, calm], done=[])
    assert [(p.id, why) for p, why in found] == [(2, "in the same thread"),
                                                 (3, "about complaint again")]
    assert angry_again(7, "complaint", before, [same_thread, same_kind], done=[2, 3]) == []


def test_the_digest_line() -> None:
    from monitor.store.followup import Answered

    assert followup.answered_line(Answered(30, 12, 5, 13, 0)) == \
        "answered last week: 30; won back 12, still unhappy 5, quiet 13"
    assert followup.answered_line(Answered(3, 1, 0, 0, 2)).endswith(", too early 2")


# --- the whole loop --------------------------------------------------------------------------

RULES = ("angry.yaml", "churn.yaml", "complaint.yaml", "praise.yaml", "unhappy.yaml")


def atom(entries: list[tuple[str, str, str, datetime, str]]) -> bytes:
    """(id, author, thread, published, text) -> an Atom feed whose entries answer threads."""
    items = "".join(
        f"<entry><id>{i}</id><title>Re: {t}</title><link href='https://f.test/{i}'/>"
        f"<author><name>{escape(a)}</name></author><updated>{p.isoformat()}</updated>"
        f"<published>{p.isoformat()}</published>"
        f"<thr:in-reply-to ref='https://f.test/{t}' href='https://f.test/{t}'/>"
        f"<content>{escape(x)}</content></entry>" for i, a, t, p, x in entries)
    return (f"<?xml version='1.0'?><feed xmlns='http://www.w3.org/2005/Atom' "
            f"xmlns:thr='http://purl.org/syndication/thread/1.0'><title>Forum</title>"
            f"<id>f</id><updated>{T0.isoformat()}</updated>{items}</feed>").encode()


ANGRY = "Sync is broken again and I lost all my notes. This is UNACCEPTABLE, fix it now!"
HAPPY = "Thanks, the fix works great! Sync is back and I love the app again."
FURIOUS = "This is ridiculous, you broke sync AGAIN. Worst app ever, I am so angry!!!"
LEAVING = "I'm cancelling my subscription and switching to Evernote."
SEARCH = "The search has been broken for a week and I can't find anything. Really disappointed."
THANKS = "Search works again, thank you so much for the quick help! Great support."


@pytest.fixture
def project(make_project, server: LoopbackServer, store_url: str) -> Path:
    path = make_project([{"name": "forum", "kind": "rss", "url": server.url("/forum.atom")},
                         {"name": "chat", "kind": "rss", "url": server.url("/chat.atom")}],
                        rules="rules: []\n", store=store_url)
    for name in RULES:
        shutil.copy(REPO / "rules" / name, path.parent / "rules")
    return path


def test_the_loop_won_back_still_unhappy_leaving_quiet_and_linked(
        project: Path, server: LoopbackServer) -> None:
    before = datetime.now(UTC).replace(microsecond=0) - timedelta(days=2)
    first = [("a1", "marta", "t1", before, ANGRY), ("b1", "bob", "t2", before, ANGRY),
             ("c1", "carl", "t3", before, SEARCH), ("d1", "dana", "t4", before, SEARCH),
             ("e1", "erin", "t5", before, SEARCH)]
    server.serve("/forum.atom", body=atom(first))
    server.serve("/chat.atom", body=atom([]))
    config = configuration.load(project)
    store = Store(config.store_url)
    try:
        run_once(config, store)
        by_author = {c.author: c.id for c in store.list_cases(now=datetime.now(UTC))}
        assert set(by_author) == {"marta", "bob", "carl", "dana", "erin"}
        answered = datetime.now(UTC)
        for author, case_id in by_author.items():
            if author == "dana":  # through the CLI, as a person would
                said = CliRunner().invoke(main, [
                    "queue", "respond", str(case_id), "--template", "praise-thanks", "--text",
                    "Hi dana", "--as", "ana", "--config", str(project)])
                assert said.exit_code == 0, said.output
                continue
            cases.respond(store, case_id, actor="ana", now=answered,
                          template="angry-listen" if author in ("marta", "bob")
                          else "praise-thanks")
        cases.resolve(store, by_author["bob"], actor="ana", now=answered)
        assert followup.update(store, config, answered) == \
            [f"case {by_author[a]}: {TOO_EARLY}" for a in sorted(by_author,
                                                                 key=by_author.get)]
        time.sleep(1.1)  # the later posts are published after the reply, to the second
        later = datetime.now(UTC).replace(microsecond=0)
        server.serve("/forum.atom", body=atom([
            *first, ("a2", "marta", "t1", later, HAPPY), ("b2", "bob", "t2", later, FURIOUS),
            ("c2", "carl", "t3", later, LEAVING)]))
        server.serve("/chat.atom", body=atom([("x1", "erin_b", "c9", later, THANKS)]))
        run_once(config, store)  # its follow-up decides what the new posts show

        def outcome(author: str) -> dict:
            found = store.outcome(by_author[author])
            assert found is not None
            return found

        assert outcome("marta")["outcome"] == WON_BACK
        [shown] = store.posts_by_id(outcome("marta")["evidence"]["shown_by"])
        assert shown["text"] == HAPPY and shown["author"] == "marta"
        assert outcome("marta")["decided_at"] is not None

        bob = store.get_case(by_author["bob"], datetime.now(UTC))
        assert outcome("bob")["outcome"] == STILL_UNHAPPY
        assert bob.case.state != "resolved"  # reopened by the follow-up ...
        assert bob.case.posts == 2  # ... with the new post in it, not in a new case
        assert "bob" not in [c.author for c in store.list_cases(now=datetime.now(UTC))
                             if c.id != by_author["bob"]]
        [note] = bob.notes
        assert note["actor"] is None and "reopened" in note["detail"]["text"]
        reopened = [e for e in bob.events if e["action"] == "reopened"]
        assert len(reopened) == 1 and reopened[0]["actor"] is None

        carl = outcome("carl")
        assert carl["outcome"] == STILL_UNHAPPY and len(carl["evidence"]["churn"]) == 1
        still_open = store.get_case(by_author["carl"], datetime.now(UTC))
        assert still_open.case.state == "responded"  # open: the note says so, no reopen
        assert "still open" in still_open.notes[0]["detail"]["text"]
        assert outcome("dana")["outcome"] == TOO_EARLY
        assert outcome("dana")["evidence"]["template"] == "praise-thanks"
        assert outcome("erin")["outcome"] == TOO_EARLY  # erin_b is nobody yet

        assert store.link([("forum", "erin"), ("chat", "erin_b")], "ana", later) == \
            "forum:erin"
        followup.update(store, config, datetime.now(UTC))  # no new pass needed
        assert outcome("erin")["outcome"] == WON_BACK
        assert outcome("erin")["evidence"]["after"]["posts"] == 1

        again = followup.update(store, config, datetime.now(UTC))
        assert again == []  # nothing changed, no second reopen
        assert len(store.get_case(by_author["bob"], datetime.now(UTC)).notes) == 1

        done = answered + timedelta(days=31)
        followup.update(store, config, done)
        assert outcome("dana")["outcome"] == GONE_QUIET
        assert outcome("marta")["outcome"] == WON_BACK
        assert store.followups_due() == []  # all final

        result = CliRunner().invoke(main, ["queue", "stats", "--outcomes", "--json",
                                           "--config", str(project)])
        assert result.exit_code == 0, result.output
        figures = json.loads(result.output)
        [ana] = figures["person"]
        assert (ana["key"], ana["answered"], ana["won_back"], ana["still_unhappy"],
                ana["gone_quiet"], ana["too_early"]) == ("ana", 5, 2, 2, 1, 0)
        assert ana["rate"] == 0.4
        templates = {f["key"]: (f["answered"], f["won_back"]) for f in figures["template"]}
        assert templates == {"angry-listen": (2, 1), "praise-thanks": (3, 1)}
        assert {f["key"] for f in figures["severity"]} <= {"low", "medium", "high",
                                                           "critical"}
        assert figures["answered_last_7_days"]["answered"] == 5

        shown = CliRunner().invoke(main, ["queue", "stats", "--config", str(project)])
        assert shown.exit_code == 0 and "won back" in shown.output
        assert "answered last 7 days: 5; won back 2, still unhappy 2, quiet 1" in shown.output
    finally:
        store.close()


def test_people_link_and_show(project: Path) -> None:
    def run(*words: str) -> object:
        return CliRunner().invoke(main, ["people", *words, "--config", str(project)])

    linked = run("link", "reddit:marta_k", "discourse:marta")
    assert linked.exit_code == 0, linked.output
    assert "discourse:marta" in linked.output and "reddit:marta_k" in linked.output
    third = run("link", "forum:marta", "discourse:marta")  # joins the same person
    assert third.exit_code == 0
    shown = run("show", "forum:marta")
    assert shown.exit_code == 0, shown.output
    assert "reddit:marta_k" in shown.output and "discourse:marta" in shown.output
    assert run("link", "reddit:marta_k").exit_code == 1       # one name links nothing
    assert run("link", "marta", "reddit:marta_k").exit_code == 2  # not SOURCE:AUTHOR
    assert run("show", "nobody").exit_code == 2


def test_the_figures_add_up_to_the_headline_by_who_answered_first(make_project,
                                                                   store_url: str) -> None:
    """Every won-back figure counts the cases first answered in the last 7 days, followed or
    not yet, under the person who recorded that first answer (not the case's assignee, not a
    later answer's author): each table's rows add up to the headline."""
    from test_queue import file

    from monitor.store.followup import Answered

    project = make_project([{"name": "forum", "kind": "rss", "url": "https://f.test/a.atom"}],
                           rules="rules: []\n", store=store_url)
    now = datetime.now(UTC).replace(microsecond=0)
    day = timedelta(days=1)
    store = Store(store_url)
    try:
        policy = configuration.load(project).policy

        def answered(name: str, at: datetime, template: str, opened: datetime) -> int:
            case_id = file(store, name, thread=name, now=opened, author=name)
            cases.assign(store, case_id, "bo", actor="lead", now=opened, policy=policy)
            cases.respond(store, case_id, actor="ana", now=at, template=template)
            return case_id

        def outcome(case_id: int, outcome: str, by: str, template: str) -> None:
            store.save_outcome(case_id, outcome, responded_at=now - day,
                               window_ends_at=now + 29 * day, decided_at=now, now=now,
                               evidence={"by": by, "template": template, "launch": None})

        won = answered("won", now - day, "angry-listen", now - 2 * day)
        outcome(won, WON_BACK, "ana", "angry-listen")
        again = answered("again", now - day, "angry-listen", now - 2 * day)
        cases.resolve(store, again, actor="ana", now=now - day)
        cases.reopen(store, again, actor="bo", now=now - timedelta(hours=3), policy=policy)
        cases.respond(store, again, actor="cy", now=now - timedelta(hours=2),
                      template="praise-thanks")  # a later answer, by someone else
        outcome(again, STILL_UNHAPPY, "cy", "praise-thanks")
        answered("unfollowed", now - timedelta(hours=1), "angry-listen", now - 2 * day)
        old = answered("old", now - 10 * day, "angry-listen", now - 11 * day)
        outcome(old, GONE_QUIET, "ana", "angry-listen")  # first answered before the week
        file(store, "unanswered", thread="unanswered", now=now - day, author="u")

        result = CliRunner().invoke(main, ["queue", "stats", "--outcomes", "--json",
                                           "--config", str(project)])
        assert result.exit_code == 0, result.output
        shown = json.loads(result.output)
        week = shown.pop("answered_last_7_days")
        assert week == {"answered": 3, "won_back": 1, "still_unhappy": 1, "gone_quiet": 0,
                        "too_early": 1}
        assert store.answered_between(now - 7 * day, now + day) == \
            Answered(**week)  # the digest's line counts the same cases
        for group, rows in shown.items():
            for field in week:
                assert sum(r[field] for r in rows) == week[field], (group, field)
        assert [(r["key"], r["answered"], r["won_back"], r["still_unhappy"], r["too_early"])
                for r in shown["person"]] == [("ana", 3, 1, 1, 1)]
        assert {r["key"]: r["answered"] for r in shown["template"]} == \
            {"angry-listen": 2, "praise-thanks": 1}

        text = CliRunner().invoke(main, ["queue", "stats", "--outcomes", "--config",
                                         str(project)])
        assert text.exit_code == 0, text.output
        assert ("answered last 7 days: 3; won back 1, still unhappy 1, quiet 0, too early 1"
                in text.output)
        assert "bo" not in text.output.split() and "cy" not in text.output.split()
    finally:
        store.close()


def test_the_figures_leave_out_cases_the_follow_up_never_follows(store_url: str) -> None:
    """A storm, an alert and a case opened by a post with no author are answered but never
    followed (``followups_due`` skips them): counted, they would stay too early to say for
    ever. The figures count the cases the follow-up follows, followed yet or not."""
    from test_queue import file, file_post

    from monitor.model import STORM_SOURCE, SYSTEM_SOURCE, Post
    from monitor.store.followup import Answered

    now = datetime.now(UTC).replace(microsecond=0)
    opened, at = now - timedelta(days=2), now - timedelta(days=1)
    store = Store(store_url)
    try:
        def pseudo(source: str) -> int:
            """A storm's or an alert's case, named, so that only its source leaves it out."""
            return file_post(store, Post(source=source, external_id="x", url="https://f.test/x",
                                         author="detector", title="Storm", text="40 posts",
                                         published_at=opened, thread_id="x"), now=opened)

        ordinary = file(store, "ordinary", thread="a", now=opened, author="ann")
        skipped = [pseudo(STORM_SOURCE + "New editor"), pseudo(SYSTEM_SOURCE + "monitor"),
                   file(store, "nobody", thread="b", now=opened, author=None)]
        for case_id in (ordinary, *skipped):
            cases.respond(store, case_id, actor="ana", now=at, template="angry-listen")

        assert [f.case_id for f in store.followups_due()] == [ordinary]
        assert [r["id"] for r in store.answered_cases(now - timedelta(days=7), now)] == \
            [ordinary]
        week, tables = followup.last_week(store, now)
        assert week == Answered(1, 0, 0, 0, 1)  # the ordinary case: not followed yet
        assert week == store.answered_between(now - timedelta(days=7), now)  # the digest's
        for group, rows in tables.items():
            assert (sum(r.answered for r in rows), sum(r.too_early for r in rows)) == (1, 1), \
                group
    finally:
        store.close()


# --- the demo and the web inbox --------------------------------------------------------------

def test_the_demo_shows_a_won_back_case_in_the_cli_and_the_web(tmp_path: Path) -> None:
    import re

    from starlette.testclient import TestClient

    from monitor import accounts
    from monitor.demo import WON_BACK_AUTHOR, run_demo
    from monitor.web.app import create_app

    said: list[str] = []
    run_demo(tmp_path, said.append)
    assert any("won back" in line for line in said)
    config = configuration.load(tmp_path / "config.yaml")
    store = Store(config.store_url)
    try:
        now = datetime.now(UTC)
        [answered] = [c for c in store.list_cases(now=now, states=["responded"])]
        assert answered.author == WON_BACK_AUTHOR
        found = store.outcome(answered.id)
        assert found is not None and found["outcome"] == WON_BACK
        shown = CliRunner().invoke(main, ["queue", "stats", "--config",
                                          str(tmp_path / "config.yaml")])
        assert "answered last 7 days: 1; won back 1," in shown.output
        from monitor.reports import digest, render

        today = digest.build_for(config, store, now.astimezone(config.timezone).date(), now)
        assert today.answered_text.startswith("answered in the last 7 days: 1; won back 1,")
        assert "Did our answers win them back?" in render.render_html(today, None)
        assert "Answered in the last 7 days: 1; won back 1" in render.render_markdown(today)

        password = "correct horse battery staple"
        accounts.add_user(store, "lead", "lead", password, now)
        client = TestClient(create_app(config, store), follow_redirects=False)
        token = re.search(r'name="csrf" value="([^"]+)"', client.get("/login").text)
        assert token is not None
        assert client.post("/login", data={"name": "lead", "password": password,
                                           "csrf": token.group(1)}).status_code == 303
        stats = client.get("/stats").text
        assert "Did the answer win them back?" in stats and "won back 1" in stats
        page = client.get(f"/cases/{answered.id}").text
        assert "Did the answer win them back? won back" in page
        assert "Happy to stay on Pro" in page  # the post that shows it

        other = next(c for c in store.list_cases(now=now) if c.state in ("new", "assigned"))
        page = client.get(f"/cases/{other.id}").text
        assert 'id="reply-template" name="template"' in page and 'data-id="' in page
        fields = {name: re.search(rf'name="{name}" value="([^"]*)"', page).group(1)
                  for name in ("csrf", "seen")}
        answer = client.post(f"/cases/{other.id}/respond",
                             data={**fields, "text": "Sorry!", "template": "angry-listen"})
        assert answer.status_code == 303, answer.text
        [reply] = [e for e in store.get_case(other.id, now).events
                   if e["action"] == "responded"]
        assert reply["detail"] == {"text": "Sorry!", "template": "angry-listen"}
    finally:
        store.close()
