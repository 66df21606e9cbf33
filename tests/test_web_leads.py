"""The lead pages (launches, digests, stats, sources) and the admin page of the web inbox,
driven through the real login form against the offline demo's store: the figures shown are
the reports' own, each role sees only its pages, and every change needs the CSRF token."""

from __future__ import annotations

import html
import re
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from typing import Any

import pytest
import yaml
from conftest import cheap_hasher
from starlette.applications import Starlette
from starlette.testclient import TestClient

from monitor import accounts
from monitor import config as configuration
from monitor.backlash import report as backlash
from monitor.backlash.events import find_event, watched
from monitor.demo import run_demo
from monitor.reports import digest as digests
from monitor.store import Store
from monitor.store.schema import deliveries
from monitor.store.web import CaseFilter
from monitor.web.app import create_app
from monitor.web.pages import REPORT_CSP

PASSWORD = "correct horse battery staple"
HOSTILE = "<script>alert(1)</script>"
LEAD_PAGES = ("/launches", "/launches/New%20editor", "/launches/New%20editor/report",
              "/digests", "/stats", "/sources")
ADMIN_FORMS = ("/admin/users", "/admin/users/lead/disable", "/admin/users/lead/password",
               "/admin/silences", "/admin/silences/1/expire", "/admin/deliveries/retry")


@dataclass
class Demo:
    config: configuration.Config
    store: Store
    app: Starlette


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Demo]:
    """The offline demo's project (a launch "New editor", cases, a broken-then-fixed source),
    plus a launch with a hostile name, and one account of each role."""
    folder = tmp_path_factory.mktemp("demo")
    run_demo(folder, lambda _line: None)
    settings = yaml.safe_load((folder / "config.yaml").read_text())
    settings["events"].append({"name": HOSTILE, "date": date(2026, 1, 5), "keywords": ["x"]})
    (folder / "config.yaml").write_text(yaml.safe_dump(settings))
    config = configuration.load(folder / "config.yaml")
    store = Store(config.store_url)
    now = datetime.now(UTC)
    for name in ("admin", "lead", "staff"):
        accounts.add_user(store, name, name, PASSWORD, now, hasher=cheap_hasher())
    yield Demo(config, store, create_app(config, store))
    store.close()


def login(demo: Demo, name: str, password: str = PASSWORD) -> TestClient:
    """A client logged in through the login form, as a browser would."""
    client = TestClient(demo.app, follow_redirects=False)
    form = client.get("/login").text
    token = re.search(r'name="csrf" value="([^"]+)"', form)
    assert token is not None
    answer = client.post("/login", data={"name": name, "password": password,
                                         "csrf": token.group(1)})
    assert answer.status_code == 303, answer.text
    return client


def csrf_of(client: TestClient) -> str:
    found = re.search(r'name="csrf" value="([^"]+)"', client.get("/").text)
    assert found is not None
    return found.group(1)


def post(client: TestClient, path: str, **fields: Any) -> Any:
    """A form sent with the session's token, as the pages send them."""
    return client.post(path, data={"csrf": csrf_of(client), **fields})


def message_of(answer: Any, kind: str | None = None) -> str:
    """The message a redirect to /admin carries; with ``kind`` ("ok", "error"), it must be
    one of that kind."""
    from urllib.parse import parse_qsl, urlsplit

    assert answer.status_code == 303, answer.text
    target = urlsplit(answer.headers["location"])
    assert target.path == "/admin"
    said = dict(parse_qsl(target.query))
    assert kind is None or said["kind"] == kind, said
    return said["msg"]


@pytest.fixture(scope="module")
def lead(demo: Demo) -> TestClient:
    return login(demo, "lead")


@pytest.fixture(scope="module")
def admin(demo: Demo) -> TestClient:
    return login(demo, "admin")


# --- lead pages --------------------------------------------------------------------------------

def test_the_launches_page_lists_each_launch_with_a_link(demo: Demo, lead: TestClient) -> None:
    page = lead.get("/launches")
    assert page.status_code == 200
    assert '<a href="/launches/New%20editor">New editor</a>' in page.text
    assert "new editor, editor" in page.text


def test_a_launch_page_shows_the_reports_figures_and_frames_the_report(
        demo: Demo, lead: TestClient) -> None:
    event = find_event(watched(demo.config.main.events, demo.config.timezone), "New editor")
    assert event is not None
    made = backlash.build(demo.store, event, demo.config.timezone, datetime.now(UTC))
    page = lead.get("/launches/New%20editor")
    assert page.status_code == 200
    assert made.posts_before and made.posts_after
    assert f'<td class="num">{made.posts_before}</td><td class="num">{made.posts_after}</td>' \
        in page.text
    assert html.escape(made.verdict.split(";")[0]) in page.text
    assert '<iframe class="report" sandbox src="/launches/New%20editor/report"' in page.text
    assert 'hx-trigger="every 300s"' in page.text  # the demo's launch is two days old
    assert "updates every 5 minutes" in page.text
    part = lead.get("/launches/new editor?part=report")  # the name in any case, as the CLI
    assert part.status_code == 200 and "<html" not in part.text and "<iframe" in part.text


def test_report_documents_are_the_clis_html_under_the_report_csp(
        demo: Demo, lead: TestClient) -> None:
    today = datetime.now(demo.config.timezone).date().isoformat()
    for path, title in (("/launches/New%20editor/report", "Backlash: New editor"),
                        (f"/digests/{today}/report", "<title>Feedback digest,")):
        document = lead.get(path)
        assert document.status_code == 200
        assert document.headers["content-security-policy"] == REPORT_CSP
        assert "<script" not in document.text.lower()
        assert title in document.text
        assert "data:image/png;base64," in document.text  # its chart, inline


def test_the_digest_archive_lists_days_with_their_counts(demo: Demo, lead: TestClient) -> None:
    """Each day's count is that day's digest's own "Flagged" figure: praise is stored as a
    flag, but needs nobody, so the archive counted the demo's day's praise too (54 flagged
    posts listed against a digest saying 47)."""
    zone = demo.config.timezone
    now = datetime.now(UTC)
    today = now.astimezone(zone).date()
    counted = digests.flagged_days(demo.store, digests.day_bounds(
        today - timedelta(days=59), zone)[0], now, zone)
    newest = next(iter(counted))  # the demo's day (yesterday, run just before midnight)
    assert counted[newest] and today - newest <= timedelta(days=1)
    made = digests.build_for(demo.config, demo.store, newest, now)
    assert made.praise  # the demo's day has praise, which the digest does not count
    assert counted[newest] == made.flagged.value
    page = lead.get("/digests")
    assert page.status_code == 200
    row = re.search(rf'href="/digests/{newest.isoformat()}">[^<]+</a></th>\s*'
                    r'<td class="num">(\d+)</td>', page.text)
    assert row is not None and int(row.group(1)) == made.flagged.value


def test_a_digest_page_shows_that_days_digest(demo: Demo, lead: TestClient) -> None:
    today = datetime.now(demo.config.timezone).date()
    built = digests.build_for(demo.config, demo.store, today, datetime.now(UTC))
    page = lead.get(f"/digests/{today.isoformat()}")
    assert page.status_code == 200
    assert html.escape(built.summary) in page.text
    assert f'<td class="num">{built.new_cases}</td>' in page.text
    assert f'sandbox src="/digests/{today.isoformat()}/report"' in page.text


def test_the_stats_page_shows_the_queue_by_severity_person_and_day(
        demo: Demo, lead: TestClient) -> None:
    now = datetime.now(UTC)
    critical = next(s for s in demo.store.queue_stats(now) if s.severity == "critical")
    activity = demo.store.case_activity(now, demo.config.timezone)
    page = lead.get("/stats")
    assert page.status_code == 200
    row = re.search(r'<span class="sev">critical</span></th>\s*<td class="num">(\d+)</td>',
                    page.text)
    assert row is not None and int(row.group(1)) == critical.open
    assert len(activity.days) == 14 and sum(d.opened for d in activity.days)
    for day in activity.days:
        assert re.search(rf'<th scope="row">{day.day:%a} {day.day.day} {day.day:%b}</th>'
                         rf'<td class="num">{day.opened}</td><td class="num">{day.closed}</td>',
                         page.text)


def test_case_activity_counts_per_person(demo: Demo) -> None:
    """Assigned, answered and closed cases, each in its own column and day."""
    from monitor import cases

    now = datetime.now(UTC)
    open_ids = [c.id for c in demo.store.list_cases(now=now)]
    policy = demo.config.policy
    cases.assign(demo.store, open_ids[0], "alice", actor="lead", now=now, policy=policy)
    cases.assign(demo.store, open_ids[1], "alice", actor="lead", now=now, policy=policy)
    cases.resolve(demo.store, open_ids[1], actor="alice", now=now)
    activity = demo.store.case_activity(now, demo.config.timezone)
    alice = next(p for p in activity.people if p.name == "alice")
    assert alice.open == 1
    assert activity.days[-1].closed >= 1
    nobody = activity.people[-1]  # the unassigned cases: a lead must see them too
    assert nobody.name is None and nobody.open == len(open_ids) - 2


def test_the_stats_page_counts_cases_answered_but_assigned_to_nobody(
        demo: Demo, lead: TestClient) -> None:
    """The demo's answer is to a case nobody was assigned: it is counted on nobody's row,
    beside the won-back line that counts it, not left out as if nobody had answered."""
    page = lead.get("/stats").text
    row = re.search(r'<a href="/\?assignee=-"><em>nobody</em></a></th>\s*'
                    r'<td class="num">(\d+)</td><td class="num">\d+</td>\s*'
                    r'<td class="num">(\d+)</td>', page)
    assert row is not None, page
    assert int(row.group(2)) >= 1 and "none was answered in the last 7 days" not in page


def test_the_export_tells_praise_so_its_flagged_posts_match_the_digests(demo: Demo) -> None:
    """`export posts` said flagged for praise too (75 against the digest's 65); its `praise`
    field now tells them apart, by the digest's own rule."""
    from monitor.export import post_records

    now = datetime.now(UTC)
    rows = [r for r in post_records(demo.store) if not r["source"].startswith("system:")]
    praise = [r for r in rows if r["praise"]]
    assert praise and all(r["flagged"] for r in praise)
    assert all(r["category"] == "praise" or "praise" in r["tags"] for r in praise)
    flagged = digests.flagged_days(demo.store, now - timedelta(days=400), now,
                                   demo.config.timezone)
    assert sum(r["flagged"] and not r["praise"] for r in rows) == sum(flagged.values())


def test_the_sources_page_shows_health_passes_and_alerts(demo: Demo, lead: TestClient) -> None:
    page = lead.get("/sources")
    assert page.status_code == 200
    for source in demo.config.sources:
        assert f"<th scope=\"row\">{source.name}</th>" in page.text
    assert f">{demo.store.count_cases(CaseFilter())} open</a>" in page.text
    assert "acme-status (rss) failed 2 times in a row" in page.text  # the demo's own alert
    assert "Last pass: " in page.text and "none yet" not in page.text


def test_unknown_launches_and_days_are_404_pages(lead: TestClient) -> None:
    future = (datetime.now(UTC).date() + timedelta(days=3)).isoformat()
    for path in ("/launches/No%20such%20launch", "/launches/nope/report", "/digests/2026-13-45",
                 "/digests/yesterday", f"/digests/{future}", "/digests/2026-1-5/report",
                 "/digests/20261203", "/digests/0001-01-01"):
        answer = lead.get(path)
        assert answer.status_code == 404, path
        assert "Traceback" not in answer.text


def test_a_hostile_launch_name_is_shown_escaped(lead: TestClient) -> None:
    listing = lead.get("/launches").text
    assert html.escape(HOSTILE) in listing and HOSTILE not in listing
    page = lead.get("/launches/%3Cscript%3Ealert%281%29%3C/script%3E")
    assert page.status_code == 200
    assert html.escape(HOSTILE) in page.text and HOSTILE not in page.text
    assert "hx-trigger" not in page.text  # its days are over: nothing left to update
    document = lead.get("/launches/%3Cscript%3Ealert%281%29%3C/script%3E/report")
    assert document.status_code == 200 and "<script" not in document.text.lower()


def test_a_report_that_cannot_be_made_is_an_error_page(
        demo: Demo, lead: TestClient, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.errors import StoreError
    from monitor.web import leads

    def fail(*_args: Any, **_kwargs: Any) -> None:
        raise StoreError("the database is locked")

    monkeypatch.setattr(leads.backlash, "build", fail)
    monkeypatch.setattr(leads.digests, "build_for", fail)
    demo.app.state.reports.clear()  # nothing built before this test is reused
    today = datetime.now(demo.config.timezone).date().isoformat()
    for page in ("/launches/New%20editor", f"/digests/{today}"):
        answer = lead.get(page)
        assert answer.status_code == 503
        assert "the database is locked" in answer.text and "Traceback" not in answer.text
        document = lead.get(page + "/report")
        assert document.status_code == 503
        assert document.headers["content-security-policy"] == REPORT_CSP
        assert "the database is locked" in document.text


# --- who may see what --------------------------------------------------------------------------

def test_staff_may_not_see_lead_or_admin_pages(demo: Demo) -> None:
    staff = login(demo, "staff")
    for path in (*LEAD_PAGES, "/admin"):
        assert staff.get(path).status_code == 403, path
    token = csrf_of(staff)
    for path in ADMIN_FORMS:
        assert staff.post(path, data={"csrf": token, "name": "x", "password": PASSWORD * 2,
                                      "role": "admin"}).status_code == 403, path
    assert accounts.get_user(demo.store, "x") is None


def test_a_lead_may_not_see_the_admin_page(lead: TestClient) -> None:
    assert lead.get("/admin").status_code == 403
    assert post(lead, "/admin/users", name="sneaky", role="admin",
                password=PASSWORD).status_code == 403


def test_a_visitor_is_sent_to_the_login(demo: Demo) -> None:
    visitor = TestClient(demo.app, follow_redirects=False)
    for path in ("/launches", "/admin"):
        assert visitor.get(path).headers["location"].startswith("/login?next=")


# --- admin -------------------------------------------------------------------------------------

def test_an_admin_adds_a_user_who_can_then_log_in(demo: Demo, admin: TestClient) -> None:
    answer = post(admin, "/admin/users", name="newlead", role="lead", password=PASSWORD)
    assert message_of(answer) == "User newlead added (lead)."
    assert accounts.get_user(demo.store, "newlead").role == "lead"
    assert login(demo, "newlead").get("/stats").status_code == 200


def test_a_refused_user_is_a_message_not_an_error(demo: Demo, admin: TestClient) -> None:
    short = post(admin, "/admin/users", name="shorty", role="staff", password="short")
    assert "at least 12 characters" in message_of(short)
    assert accounts.get_user(demo.store, "shorty") is None
    taken = post(admin, "/admin/users", name="lead", role="staff", password=PASSWORD)
    assert "already a user named 'lead'" in message_of(taken)
    role = post(admin, "/admin/users", name="odd", role="boss", password=PASSWORD)
    assert "unknown role" in message_of(role)
    shown = admin.get(short.headers["location"])
    assert shown.status_code == 200 and 'class="error" role="alert"' in shown.text


def test_disabling_a_user_ends_their_session(demo: Demo, admin: TestClient) -> None:
    accounts.add_user(demo.store, "leaver", "staff", PASSWORD, datetime.now(UTC))
    theirs = login(demo, "leaver")
    assert theirs.get("/").status_code == 200
    answer = post(admin, "/admin/users/leaver/disable")
    assert message_of(answer) == "User leaver disabled; its sessions ended."
    assert accounts.get_user(demo.store, "leaver").disabled
    assert theirs.get("/").status_code == 303  # to the login page
    assert any(u.name == "leaver" for u in accounts.list_users(demo.store))  # never deleted
    itself = post(admin, "/admin/users/admin/disable")
    assert "cannot disable your own account" in message_of(itself)


def test_a_new_password_logs_the_old_sessions_out(demo: Demo, admin: TestClient) -> None:
    accounts.add_user(demo.store, "forgetful", "staff", PASSWORD, datetime.now(UTC))
    theirs = login(demo, "forgetful")
    fresh = "a brand new passphrase"
    answer = post(admin, "/admin/users/forgetful/password", password=fresh)
    assert "Password of forgetful changed" in message_of(answer)
    assert theirs.get("/").status_code == 303
    assert login(demo, "forgetful", fresh).get("/").status_code == 200
    short = post(admin, "/admin/users/forgetful/password", password="tiny")
    assert "not changed" in message_of(short)
    nobody = post(admin, "/admin/users/ghost/password", password=fresh)
    assert "no user named 'ghost'" in message_of(nobody)


def test_new_names_are_lowercase_letters_digits_and_dot_dash_underscore(
        demo: Demo, admin: TestClient) -> None:
    from click.testing import CliRunner

    from monitor.cli import users as users_cli

    demo.store.add_user("Mixed", "staff", accounts.hash_password(PASSWORD), datetime.now(UTC))
    for name in ("ANA", HOSTILE, "bad/name", "two words", "émile", "mixed"):
        refused = post(admin, "/admin/users", name=name, role="staff", password=PASSWORD)
        said = message_of(refused, "error")
        assert said.startswith("No user added: "), said
        assert accounts.get_user(demo.store, name) is None, name
    assert "lowercase letters" in message_of(post(admin, "/admin/users", name="ANA",
                                                  role="staff", password=PASSWORD))
    assert "already a user named 'Mixed'" in message_of(post(
        admin, "/admin/users", name="mixed", role="staff", password=PASSWORD))
    added = post(admin, "/admin/users", name="j.doe_2-x", role="staff", password=PASSWORD)
    assert message_of(added, "ok") == "User j.doe_2-x added (staff)."
    assert login(demo, "Mixed").get("/").status_code == 200  # made before the rule: works
    cli = CliRunner().invoke(users_cli.users, ["add", "Zed", "--config", str(demo.config.path),
                                               "--role", "staff"])
    assert cli.exit_code == 2 and "lowercase letters" in cli.output  # the CLI's rule too
    assert 'pattern="[a-z0-9._\\-]+"' in admin.get("/admin").text


def test_a_hostile_user_name_is_shown_escaped_and_can_be_disabled(
        demo: Demo, admin: TestClient) -> None:
    """An account made before names had a rule, with markup in its name."""
    demo.store.add_user(HOSTILE, "staff", accounts.hash_password(PASSWORD), datetime.now(UTC))
    page = admin.get("/admin").text
    assert html.escape(HOSTILE) in page and HOSTILE not in page
    action = re.search(r'action="(/admin/users/[^"]*script[^"]*/disable)"', page)
    assert action is not None
    assert "disabled" in message_of(post(admin, html.unescape(action.group(1))))
    assert accounts.get_user(demo.store, HOSTILE).disabled


def test_an_admin_adds_and_expires_a_silence(demo: Demo, admin: TestClient) -> None:
    now = datetime.now(UTC)
    before = {s["id"] for s in demo.store.silences(now)}
    answer = post(admin, "/admin/silences", matchers="source=reddit-*\r\n\nauthor=Jane Doe",
                  lasting="2h", reason="known outage")
    assert "added" in message_of(answer)
    added = [s for s in demo.store.silences(now) if s["id"] not in before]
    assert len(added) == 1
    silence = added[0]
    assert silence["matchers"] == {"source": "reddit-*", "author": "Jane Doe"}
    assert silence["created_by"] == "admin" and silence["reason"] == "known outage"
    assert timedelta(hours=1, minutes=59) < silence["ends_at"] - now < timedelta(hours=2, minutes=1)
    assert "known outage" in admin.get("/admin").text
    expired = post(admin, f"/admin/silences/{silence['id']}/expire")
    assert f"Silence {silence['id']} expired." == message_of(expired)
    assert silence["id"] not in {s["id"] for s in demo.store.silences(datetime.now(UTC))}
    again = post(admin, f"/admin/silences/{silence['id']}/expire")
    assert "no active silence" in message_of(again)


def test_a_bad_silence_is_a_message_and_adds_nothing(demo: Demo, admin: TestClient) -> None:
    count = len(demo.store.silences(datetime.now(UTC), include_expired=True))
    for fields, problem in (({"matchers": "colour=red", "lasting": "1h", "reason": "r"},
                             "unknown key"),
                            ({"matchers": "source=x", "lasting": "0m", "reason": "r"},
                             "say how long it lasts"),
                            ({"matchers": "", "lasting": "1h", "reason": "r"}, "at least one"),
                            ({"matchers": "source=x", "lasting": "soon", "reason": "r"},
                             "not a duration"),
                            ({"matchers": "source=x", "lasting": "1h", "reason": " "}, "why")):
        assert problem in message_of(post(admin, "/admin/silences", **fields), "error")
    assert len(demo.store.silences(datetime.now(UTC), include_expired=True)) == count


def test_an_admin_retries_dead_deliveries(demo: Demo, admin: TestClient) -> None:
    now = datetime.now(UTC)
    with demo.store.engine.begin() as db:
        for n, receiver in enumerate(("pager", "pager", "chat")):
            db.execute(deliveries.insert().values(
                key=f"test:{n}:{receiver}", receiver=receiver, group_key=f"test:{n}",
                state="dead", attempts=8, next_attempt_at=now, created_at=now,
                last_error="HTTP 500 from the receiver"))
    page = admin.get("/admin").text
    assert "HTTP 500 from the receiver" in page and '<option>pager</option>' in page
    one = post(admin, "/admin/deliveries/retry", receiver="pager")
    assert message_of(one) == "2 dead deliveries will be sent again to pager."
    assert [d["receiver"] for d in demo.store.dead_deliveries()] == ["chat"]
    rest = post(admin, "/admin/deliveries/retry", receiver="")
    assert message_of(rest) == "1 dead delivery will be sent again."
    assert demo.store.dead_deliveries() == []
    assert demo.store.delivery_counts().get("pending", 0) >= 3


def test_a_post_without_the_csrf_token_is_refused_and_changes_nothing(
        demo: Demo, admin: TestClient) -> None:
    now = datetime.now(UTC)
    silences = demo.store.silences(now, include_expired=True)
    for path, fields in (("/admin/users", {"name": "forged", "role": "admin",
                                           "password": PASSWORD}),
                         ("/admin/users/lead/disable", {}),
                         ("/admin/users/lead/password", {"password": "forged password!"}),
                         ("/admin/silences", {"matchers": "source=*", "lasting": "1d",
                                              "reason": "forged"})):
        for token in ({}, {"csrf": "not-the-token"}):
            answer = admin.post(path, data={**fields, **token})
            assert answer.status_code == 403, path
    assert accounts.get_user(demo.store, "forged") is None
    assert not accounts.get_user(demo.store, "lead").disabled
    assert login(demo, "lead").get("/stats").status_code == 200  # password unchanged
    assert demo.store.silences(now, include_expired=True) == silences


def test_every_admin_form_carries_the_csrf_token(admin: TestClient) -> None:
    page = admin.get("/admin").text
    forms = re.findall(r'<form method="post".*?</form>', page, re.DOTALL)
    assert len(forms) >= 4
    for form in forms:
        assert 'name="csrf" value="' in form
    labelled = re.findall(r'<label for="([^"]+)"', page)
    for target in labelled:
        assert f'id="{target}"' in page
