"""The web inbox over HTTP (Starlette's test client), on SQLite and PostgreSQL: logins and
sessions, CSRF, roles, the reverse proxy's Remote-User, the inbox's views, filters, search and
bulk actions, the case page's commands (the CLI's own), stale actions, presence, and hostile
content kept inert. The browser's side (keys, live presence) is tests/test_web_browser.py."""

from __future__ import annotations

import re
import socket
import subprocess
import sys
import time
from datetime import timedelta
from pathlib import Path
from typing import Any

import httpx
import pytest
from webkit import (
    NOW,
    PASSWORD,
    Clock,
    add_accounts,
    file,
    load,
    login,
    project,
    set_due,
    tokens,
)

from monitor import accounts, cases
from monitor.store import Store
from monitor.web.app import create_app
from monitor.web.pages import CSP


@pytest.fixture
def site(tmp_path: Path, store_url: str):
    """(app, store, config, clock) with accounts ana/bo (staff), lee (lead), root (admin)."""
    config = load(project(tmp_path / "p", store_url,
                          web={"trusted_proxies": ["10.0.0.0/8"]}))
    store = Store(config.store_url)
    add_accounts(store)
    clock = Clock()
    yield create_app(config, store, clock), store, config, clock
    store.close()


def test_pages_need_a_login_and_the_login_form_lets_in_only_the_right_password(site) -> None:
    app, store, config, _clock = site
    from starlette.testclient import TestClient

    anonymous = TestClient(app, follow_redirects=False)
    answer = anonymous.get("/?view=mine")
    assert answer.status_code == 303
    assert answer.headers["location"] == "/login?next=/%3Fview%3Dmine"
    form = anonymous.get("/login")
    wrong = anonymous.post("/login", data={"name": "ana", "password": "wrong password!",
                                           **tokens(form.text)})
    unknown = anonymous.post("/login", data={"name": "nobody", "password": PASSWORD,
                                             **tokens(wrong.text)})  # each form its own token
    assert wrong.status_code == unknown.status_code == 401
    said = "That name and password do not let you in"
    assert said in wrong.text and said in unknown.text  # no hint which names exist
    assert "fm_session" not in anonymous.cookies
    forged = anonymous.post("/login", data={"name": "ana", "password": PASSWORD,
                                            "csrf": "made-up"})
    assert forged.status_code == 403  # a login CSRF: the form's token is the cookie's
    good = anonymous.post("/login", data={"name": "ana", "password": PASSWORD,
                                          **tokens(forged.text), "next": "//evil.test/"})
    assert good.status_code == 303 and good.headers["location"] == "/"  # never off-site
    cookie = good.headers["set-cookie"]
    assert "fm_session=" in cookie and "HttpOnly" in cookie and "SameSite=lax" in cookie
    assert "Secure" not in cookie  # plain http on loopback
    assert anonymous.get("/").status_code == 200
    assert accounts.get_user(store, "ana").last_login_at == NOW


def test_sessions_end_at_logout_when_idle_and_when_the_account_is_disabled(site) -> None:
    app, store, _config, clock = site
    ana = login(app, "ana")
    page = ana.get("/")
    assert page.status_code == 200
    ana.post("/logout", data=tokens(page.text))
    assert ana.get("/").status_code == 303

    ana = login(app, "ana")
    clock.advance(hours=7, minutes=59)
    assert ana.get("/").status_code == 200  # in use: the idle time starts again
    clock.advance(hours=8, minutes=1)
    assert ana.get("/").status_code == 303  # web.session_idle: 8h by default

    bo = login(app, "bo")
    assert bo.get("/").status_code == 200
    accounts.disable_user(store, "bo", clock())
    assert bo.get("/").status_code == 303


def test_a_session_ends_a_week_after_its_login_however_busy(site) -> None:
    app, _store, _config, clock = site
    lee = login(app, "lee")
    for _ in range(25):  # every 7 hours, for a week and a day
        clock.advance(hours=7)
        lee.get("/")
    assert lee.get("/").status_code == 303


def test_every_change_needs_the_csrf_token(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1")
    ana = login(app, "ana")
    page = ana.get(f"/cases/{case_id}")
    before = store.get_case(case_id, NOW)
    for path, data in ((f"/cases/{case_id}/claim", {}), (f"/cases/{case_id}/resolve", {}),
                       ("/inbox/bulk", {"action": "resolve", "case": str(case_id)}),
                       ("/logout", {}), (f"/cases/{case_id}/note", {"text": "hi"})):
        refused = ana.post(path, data={**data, "csrf": "not-the-token"})
        assert refused.status_code == 403, path
        assert "CSRF" in refused.text
    assert store.get_case(case_id, NOW) == before
    assert ana.post(f"/cases/{case_id}/claim", data=tokens(page.text)).status_code == 303
    assert store.get_case(case_id, NOW).case.assignee == "ana"


def test_roles_staff_work_cases_leads_assign(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1")
    ana, lee = login(app, "ana"), login(app, "lee")
    page = ana.get(f"/cases/{case_id}")
    assert f'action="/cases/{case_id}/assign"' not in page.text
    refused = ana.post(f"/cases/{case_id}/assign", data={**tokens(page.text), "person": "bo"})
    assert refused.status_code == 403 and "for leads" in refused.text
    bulk = ana.post("/inbox/bulk", data={"csrf": tokens(page.text)["csrf"], "action": "assign",
                                         "person": "bo", "case": str(case_id)})
    assert "for leads" in bulk.headers["location"].replace("+", " ")
    assert store.get_case(case_id, NOW).case.assignee is None
    page = lee.get(f"/cases/{case_id}")
    assert lee.post(f"/cases/{case_id}/assign",
                    data={**tokens(page.text), "person": "bo"}).status_code == 303
    detail = store.get_case(case_id, NOW)
    assert detail.case.assignee == "bo" and detail.events[-1]["actor"] == "lee"


def test_remote_user_is_believed_only_from_a_trusted_proxy(site) -> None:
    from starlette.testclient import TestClient

    app, _store, _config, _clock = site
    proxied = TestClient(app, follow_redirects=False, client=("10.1.2.3", 4000),
                         headers={"Remote-User": "lee", "X-Forwarded-Proto": "https"})
    answer = proxied.get("/")
    assert answer.status_code == 200 and "lee" in answer.text
    assert "Secure" in answer.headers["set-cookie"]  # https as the proxy says
    stranger = TestClient(app, follow_redirects=False, client=("192.0.2.7", 4000),
                          headers={"Remote-User": "lee"})
    assert stranger.get("/").status_code == 303  # anyone could send the header
    unknown = TestClient(app, follow_redirects=False, client=("10.1.2.3", 4000),
                         headers={"Remote-User": "mallory"})
    assert unknown.get("/").status_code == 303  # the proxy's user needs an account of ours


def test_the_inbox_lists_urgent_first_with_views_filters_and_counts(site) -> None:
    app, store, config, clock = site
    low = file(store, config, "p1", severity="low", title="Minor gripe")
    critical = file(store, config, "p2", severity="critical", title="Editor ate my drafts",
                    text="The new editor lost everything", language="fr", tags=("vip",))
    high = file(store, config, "p3", severity="high", title="Slow sync")
    set_due(store, high, NOW - __import__("datetime").timedelta(hours=1))
    cases.claim(store, low, actor="ana", now=NOW, policy=config.policy)
    ana = login(app, "ana")
    page = ana.get("/").text
    order = [int(i) for i in re.findall(r'data-case="(\d+)"', page)]
    assert order == [critical, high, low]
    counts = dict(re.findall(r'<a href="/\?view=([^"]+)"[^>]*>[^<]*<span class="count">(\d+)',
                             page))
    assert counts == {"mine": "1", "unassigned-critical": "1", "overdue": "1",
                      "new-today": "3", "open": "3", "launch%3ANew%20editor": "1"}
    assert _listed(ana, "/?severity=critical") == [critical]
    assert _listed(ana, "/?assignee=me") == [low]
    assert _listed(ana, "/?assignee=-") == [critical, high]
    assert _listed(ana, "/?language=fr") == [critical]
    assert _listed(ana, "/?tag=vip") == [critical]
    assert _listed(ana, "/?launch=New+editor") == [critical]
    assert _listed(ana, "/?view=overdue") == [high]
    assert _listed(ana, "/?source=forum&severity=low") == [low]
    cases.resolve(store, high, actor="bo", now=NOW)
    assert _listed(ana, "/?state=resolved") == [high]
    assert _listed(ana, "/?state=all") == [critical, high, low]
    unknown = ana.get("/?severity=apocalyptic&launch=Nope")
    assert unknown.status_code == 200 and "unknown severity" in unknown.text
    assert "no launch named" in unknown.text


def test_search_finds_cases_by_their_posts_and_notes(site) -> None:
    app, store, config, _clock = site
    drafts = file(store, config, "p1", title="Drafts gone", text="Where did my drafts go?")
    other = file(store, config, "p2", title="Billing", text="Charged twice")
    cases.note(store, other, "Refund promised by finance", actor="bo", now=NOW)
    ana = login(app, "ana")
    assert _listed(ana, "/?q=draft") == [drafts]
    assert _listed(ana, "/?q=refund") == [other]
    assert _listed(ana, "/?q=%22drafts+go%22") == [drafts]
    assert _listed(ana, "/?q=nothing+like+this") == []
    assert ana.get('/?q=")+OR+*+NEAR(').status_code == 200


def test_the_inbox_pages_fifty_at_a_time(site) -> None:
    app, store, config, _clock = site
    for i in range(53):
        file(store, config, f"p{i}")
    ana = login(app, "ana")
    first, second = _listed(ana, "/"), _listed(ana, "/?page=2")
    assert len(first) == 50 and len(second) == 3 and not set(first) & set(second)
    assert "page 1 of 2" in ana.get("/").text


def test_bulk_actions_go_case_by_case_and_say_what_could_not_be_done(site) -> None:
    app, store, config, _clock = site
    one, two, done = (file(store, config, f"p{i}") for i in range(3))
    cases.resolve(store, done, actor="bo", now=NOW)
    ana = login(app, "ana")
    csrf = tokens(ana.get("/").text)["csrf"]
    answer = ana.post("/inbox/bulk", data={"csrf": csrf, "action": "dismiss",
                                           "reason": "spam", "case": [one, two, done],
                                           "back": "/?view=open"})
    said = httpx.URL(answer.headers["location"]).params["msg"]
    assert said.startswith("dismiss: 2 cases done; 1 not: ")
    assert f"case {done} is resolved" in said
    for case_id in (one, two):
        detail = store.get_case(case_id, NOW)
        assert detail.case.state == "dismissed" and detail.case.reason == "spam"
        assert detail.events[-1]["actor"] == "ana"
    nothing = ana.post("/inbox/bulk", data={"csrf": csrf, "action": "dismiss", "case": [one]})
    assert "needs a reason" in httpx.URL(nothing.headers["location"]).params["msg"]


def test_a_case_is_worked_from_its_page_through_the_cli_commands(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1", title="Editor broke my notes")
    ana = login(app, "ana")

    def do(action: str, **data: str) -> httpx.Response:
        page = ana.get(f"/cases/{case_id}")
        return ana.post(f"/cases/{case_id}/{action}", data={**tokens(page.text), **data})

    assert do("claim").status_code == 303
    assert do("note", text="Asked the editor team").status_code == 303
    assert do("respond", text="Sorry! Here is how to get them back").status_code == 303
    illegal = do("respond", text="again")
    assert illegal.status_code == 400 and "already responded" in illegal.text
    assert do("resolve").status_code == 303
    assert do("reopen").status_code == 303
    dismissed = do("dismiss", reason="not a complaint")
    assert dismissed.status_code == 303
    detail = store.get_case(case_id, NOW)
    assert detail.case.state == "dismissed" and detail.case.reason == "not a complaint"
    done = [(e["actor"], e["action"], (e["detail"] or {}).get("text")) for e in detail.events]
    assert done[1:] == [("ana", "assigned", None), ("ana", "note", "Asked the editor team"),
                        ("ana", "responded", "Sorry! Here is how to get them back"),
                        ("ana", "resolved", None), ("ana", "reopened", None),
                        ("ana", "dismissed", None)]
    page = ana.get(f"/cases/{case_id}").text
    assert "Sorry! Here is how to get them back" in page and "Reopen" in page
    assert ana.get("/cases/999999").status_code == 404


def test_a_stale_action_is_refused_and_says_who_changed_the_case(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1")
    ana, bo = login(app, "ana"), login(app, "bo")
    anas_page = ana.get(f"/cases/{case_id}").text
    bos_page = bo.get(f"/cases/{case_id}").text
    assert bo.post(f"/cases/{case_id}/resolve", data=tokens(bos_page)).status_code == 303
    refused = ana.post(f"/cases/{case_id}/dismiss",
                       data={**tokens(anas_page), "reason": "spam"})
    assert refused.status_code == 409
    assert f"bo resolved case {case_id}" in refused.text and "nothing was changed" in refused.text
    detail = store.get_case(case_id, NOW)
    assert detail.case.state == "resolved" and detail.events[-1]["actor"] == "bo"
    # her own earlier change does not make her page stale
    fresh = ana.get(f"/cases/{case_id}").text
    assert ana.post(f"/cases/{case_id}/note", data={**tokens(fresh), "text": "ok"}) \
        .status_code == 303
    assert ana.post(f"/cases/{case_id}/note", data={**tokens(fresh), "text": "again"}) \
        .status_code == 303


def test_presence_shows_who_else_is_on_the_case_and_what_changed(site) -> None:
    app, store, config, clock = site
    case_id = file(store, config, "p1")
    ana, anas, bo, bos = _both_open(app, case_id)
    bo.post(f"/cases/{case_id}/presence", data=bos)  # as its page does when it has loaded
    seen_by_ana = ana.post(f"/cases/{case_id}/presence", data={**anas, "activity": "viewing"})
    assert "bo is viewing" in seen_by_ana.text and "ana is" not in seen_by_ana.text
    bo.post(f"/cases/{case_id}/presence", data={**bos, "activity": "replying"})
    assert "bo is replying" in ana.post(f"/cases/{case_id}/presence", data=anas).text
    bo.post(f"/cases/{case_id}/claim", data=bos)
    told = ana.post(f"/cases/{case_id}/presence", data=anas).text
    assert "bo assigned this case" in told
    clock.advance(seconds=30)  # bo's page stopped asking: gone
    assert "bo is" not in ana.post(f"/cases/{case_id}/presence", data=anas).text
    assert bo.post(f"/cases/{case_id}/leave", data=bos).status_code == 204


def test_new_cases_show_up_without_a_reload(site) -> None:
    app, store, config, _clock = site
    file(store, config, "p1", severity="low")
    ana = login(app, "ana")
    newest = re.search(r"/inbox/fresh\?[^\"]*after=(\d+)", ana.get("/").text).group(1)
    assert "New since" not in ana.get(f"/inbox/fresh?view=open&after={newest}").text
    later = file(store, config, "p2", severity="critical", title="Fresh fury")
    file(store, config, "p3", severity="low", title="Fresh but low")
    only_critical = ana.get(f"/inbox/fresh?severity=critical&after={newest}").text
    assert "Fresh fury" in only_critical and "Fresh but low" not in only_critical
    assert f'data-case="{later}"' in only_critical


def test_hostile_post_content_stays_text(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1", author='<img src=x onerror="alert(1)">',
                   title="<script>alert(2)</script>", url="javascript:alert(3)",
                   text='<a href="javascript:alert(4)">x</a> <style>body{display:none}</style>'
                        " [click](javascript:alert(5)) <svg onload=alert(6)>")
    ana = login(app, "ana")
    for page in (ana.get("/"), ana.get(f"/cases/{case_id}")):
        assert page.headers["content-security-policy"] == CSP
        assert "script-src 'self'" in CSP and "'unsafe-inline'" not in CSP
        html = page.text
        assert "<script>alert" not in html and "<style>body" not in html
        assert "<img src=x" not in html and "<svg" not in html
        assert 'href="javascript:' not in html
        assert "&lt;script&gt;alert(2)&lt;/script&gt;" in html
        assert re.findall(r"<script[^>]*>", html) == [
            '<script src="/static/htmx.min.js" defer>', '<script src="/static/app.js" defer>']


def test_errors_are_pages_not_tracebacks(site, monkeypatch, caplog) -> None:
    app, store, _config, _clock = site
    ana = login(app, "ana")
    assert ana.get("/no/such/page").status_code == 404

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("the disk is on fire")

    monkeypatch.setattr(store, "inbox_page", broken)
    answer = ana.get("/")
    assert answer.status_code == 500 and "Something went wrong" in answer.text
    assert "Traceback" not in answer.text and "on fire" not in answer.text
    assert "RuntimeError: the disk is on fire" in caplog.text


def test_monitor_web_serves_and_a_busy_port_names_web_port(tmp_path: Path) -> None:
    config_path = project(tmp_path / "p", "sqlite:///monitor.db")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        refused = subprocess.run([sys.executable, "-m", "monitor.cli", "web", "--config",
                                  str(config_path), "--port", str(port)],
                                 capture_output=True, text=True, timeout=60)
    assert refused.returncode == 2, refused.stderr
    assert "web.port" in refused.stderr and "Traceback" not in refused.stderr
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "monitor.cli", "web", "--config",
                               str(config_path), "--port", str(port)],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        answer = _wait_for(f"http://127.0.0.1:{port}/login")
        assert answer.status_code == 200 and "Log in" in answer.text
        assert answer.headers["content-security-policy"] == CSP
        assert httpx.get(f"http://127.0.0.1:{port}/static/app.js").status_code == 200
    finally:
        server.terminate()
        out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "No accounts yet" in err and "Traceback" not in err


def _wait_for(url: str, seconds: float = 30) -> httpx.Response:
    deadline = time.monotonic() + seconds
    while True:
        try:
            return httpx.get(url, timeout=2)
        except httpx.TransportError:
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def _listed(client, path: str) -> list[int]:
    page = client.get(path)
    assert page.status_code == 200, page.text
    listed = page.text.split('id="cases"', 1)
    return [int(i) for i in re.findall(r'data-case="(\d+)"', listed[1])] if len(listed) > 1 \
        else []


def test_the_daemon_serves_the_inbox_when_web_is_configured(tmp_path: Path) -> None:
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    config_path = project(tmp_path / "p", "sqlite:///monitor.db",
                          web={"port": port, "session_idle": "1h"})
    config = load(config_path)
    with Store(config.store_url) as store:
        add_accounts(store)
        case_id = file(store, config, "p1", title="Seen from the daemon")
    daemon = subprocess.Popen([sys.executable, "-m", "monitor.cli", "daemon", "--config",
                               str(config_path)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                              text=True)
    try:
        assert _wait_for(f"http://127.0.0.1:{port}/login").status_code == 200
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            form = browser.get("/login")
            browser.post("/login", data={"name": "lee", "password": PASSWORD,
                                         **tokens(form.text)})
            assert "Seen from the daemon" in browser.get(f"/cases/{case_id}").text
    finally:
        daemon.terminate()
        _out, err = daemon.communicate(timeout=60)
    assert daemon.returncode == 0, err
    assert "Traceback" not in err


def test_monitor_web_workers_share_the_port_and_the_sessions(tmp_path: Path) -> None:
    config_path = project(tmp_path / "p", "sqlite:///monitor.db")
    config = load(config_path)
    with Store(config.store_url) as store:
        add_accounts(store)
    with socket.socket() as free:
        free.bind(("127.0.0.1", 0))
        port = free.getsockname()[1]
    server = subprocess.Popen([sys.executable, "-m", "monitor.cli", "web", "--config",
                               str(config_path), "--port", str(port), "--workers", "2"],
                              stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for(f"http://127.0.0.1:{port}/login")
        with httpx.Client(base_url=f"http://127.0.0.1:{port}") as browser:
            form = browser.get("/login")
            browser.post("/login", data={"name": "ana", "password": PASSWORD,
                                         **tokens(form.text)})
            pages = [browser.get("/") for _ in range(20)]  # whichever worker answers
        assert {p.status_code for p in pages} == {200}
        assert all("Log out" in p.text for p in pages)
    finally:
        server.terminate()
        _out, err = server.communicate(timeout=30)
    assert server.returncode == 0, err
    assert "Traceback" not in err


# --- drafts, refusals and the people a case may go to ------------------------------------------

def _case_page(client, case_id: int) -> tuple[str, dict[str, str]]:
    page = client.get(f"/cases/{case_id}")
    assert page.status_code == 200, page.text
    return page.text, tokens(page.text)


def _both_open(app, case_id: int) -> tuple[Any, dict[str, str], Any, dict[str, str]]:
    """ana and bo logged in, each with the case's page open: (ana, her form tokens, bo, his)."""
    ana, bo = login(app, "ana"), login(app, "bo")
    return ana, _case_page(ana, case_id)[1], bo, _case_page(bo, case_id)[1]


def _box(page_html: str, box_id: str) -> str | None:
    """The text a page's textarea holds (unescaped), or None when there is no such box."""
    import html

    found = re.search(rf'<textarea id="{box_id}"[^>]*>(.*?)</textarea>', page_html, re.DOTALL)
    return None if found is None else html.unescape(found.group(1))


def test_a_refused_reply_or_note_comes_back_in_its_own_box(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1")
    ana, anas, bo, bos = _both_open(app, case_id)
    assert bo.post(f"/cases/{case_id}/resolve", data=bos).status_code == 303
    reply = "Sorry <3: the export moved to File > Export."
    refused = ana.post(f"/cases/{case_id}/respond",
                       data={**anas, "text": reply, "template": "backlash-own-it"})
    assert refused.status_code == 409
    # resolved meanwhile: no reply can be recorded, but hers is on the page to copy
    assert _box(refused.text, "reply-text") == reply
    assert 'name="template" value="backlash-own-it"' not in refused.text  # no form to send
    note = ana.post(f"/cases/{case_id}/note", data={**anas, "text": "Ask the editor team"})
    assert note.status_code == 409
    assert _box(note.text, "note-text") == "Ask the editor team"
    assert _box(note.text, "reply-text") == ""  # the note is not put in the reply's box

    open_case = file(store, config, "p2")
    page, anas = _case_page(ana, open_case)
    assert 'data-draft="reply"' in page and 'data-user="ana"' in page
    refused = ana.post(f"/cases/{open_case}/respond",
                       data={**anas, "text": "   ", "template": "backlash-own-it"})
    assert refused.status_code == 400 and "Write what you posted" in refused.text
    assert 'name="template" value="backlash-own-it"' in refused.text  # the form as it was
    assert re.search(r'<textarea id="reply-text" name="text"[^>]* required', refused.text)


def test_a_recorded_reply_says_so_and_lets_the_browser_forget_its_draft(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1")
    ana = login(app, "ana")
    _html, anas = _case_page(ana, case_id)
    done = ana.post(f"/cases/{case_id}/respond", data={**anas, "text": "Answered on the forum"})
    assert done.status_code == 303
    target = httpx.URL(done.headers["location"])
    assert target.path == f"/cases/{case_id}" and target.params["recorded"] == "reply"
    shown = ana.get(done.headers["location"]).text
    assert re.search(r'class="notice" role="status" data-recorded="reply">Your reply is '
                     r'recorded\.', shown)
    forged = ana.get(f"/cases/{case_id}?msg=Your+reply+is+recorded.&kind=ok&recorded=reply"
                     "&sig=00000000000000000000000000000000").text
    assert "data-recorded" not in forged and "Your reply is recorded" not in forged


def test_a_post_after_the_session_ended_offers_the_login_back_to_the_case(site) -> None:
    app, store, config, clock = site
    case_id = file(store, config, "p1")
    ana = login(app, "ana")
    _html, anas = _case_page(ana, case_id)
    clock.advance(hours=9)  # web.session_idle is 8h
    for action in ("respond", "note"):
        ended = ana.post(f"/cases/{case_id}/{action}", data={**anas, "text": "a long answer"})
        assert ended.status_code == 401 and "Your session has ended" in ended.text
        assert f'href="/login?next=/cases/{case_id}"' in ended.text
        assert "kept in this browser" in ended.text
    bulk = ana.post("/inbox/bulk", data={**anas, "action": "resolve", "case": str(case_id)})
    assert bulk.status_code == 401 and 'href="/login?next=/"' in bulk.text
    assert store.get_case(case_id, clock()).case.state == "new"

    again = login(app, "ana")
    back = again.get(f"/login?next=/cases/{case_id}")  # logged in: no form, on to the case
    assert back.status_code == 303 and back.headers["location"] == f"/cases/{case_id}"
    assert again.get("/login?next=//evil.test/").headers["location"] == "/"


def test_without_a_team_anyone_active_may_be_assigned(tmp_path: Path, store_url: str) -> None:
    config = load(project(tmp_path / "p", store_url, team=[]))
    with Store(config.store_url) as store:
        add_accounts(store)
        accounts.disable_user(store, "bo", NOW)
        case_id = file(store, config, "p1")
        app = create_app(config, store, Clock())
        lee = login(app, "lee")
        page, lees = _case_page(lee, case_id)
        offered = re.findall(r"<option(?: selected)?>([^<]+)</option>",
                             page.split('id="person"')[1].split("</select>")[0])
        assert offered == ["ana", "lee", "root"]  # the active accounts; bo is disabled
        assert 'data-key="c"' in page  # anyone may take a case: lee may claim it
        assert lee.post(f"/cases/{case_id}/assign",
                        data={**lees, "person": "root"}).status_code == 303
        assert store.get_case(case_id, NOW).case.assignee == "root"
        inbox = lee.get("/").text
        assert re.findall(r"<option>([^<]+)</option>", inbox.split('id="bulk-person"')[1]
                          .split("</select>")[0]) == ["ana", "lee", "root"]
        assert 'value="claim"' in inbox


def test_with_a_team_the_away_and_outsiders_are_not_offered(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1")
    cases.set_away(store, "bo", True, now=NOW, policy=config.policy)
    accounts.add_user(store, "zoe", "lead", PASSWORD, NOW)  # an account, not on the team
    lee = login(app, "lee")
    page, _lees = _case_page(lee, case_id)
    offered = re.findall(r"<option(?: selected)?>([^<]+)</option>",
                         page.split('id="person"')[1].split("</select>")[0])
    assert offered == ["ana", "lee", "root"]  # bo is away: assigning to bo is refused
    assert 'data-key="c"' in page  # lee is on the team: may claim
    zoe = login(app, "zoe")
    page, zoes = _case_page(zoe, case_id)
    assert 'data-key="c"' not in page and 'value="claim"' not in zoe.get("/").text
    refused = zoe.post(f"/cases/{case_id}/claim", data=zoes)  # what the button would do
    assert refused.status_code == 400 and "not on the team" in refused.text


def test_a_reply_with_the_templates_placeholder_left_in_is_refused(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1")
    ana = login(app, "ana")
    page, anas = _case_page(ana, case_id)
    assert 'data-id="backlash-workaround"' in page
    unedited = ("Hi marta, sorry. In case it helps right now: [describe the setting or\n"
                "workaround, only if there is one]. Either way ...")
    refused = ana.post(f"/cases/{case_id}/respond",
                       data={**anas, "text": unedited, "template": "backlash-workaround"})
    assert refused.status_code == 400
    assert ("still holds the template&#39;s placeholder &#34;[describe the setting or "
            "workaround, only if there is one]&#34;") in refused.text
    assert _box(refused.text, "reply-text") == unedited.strip()
    assert store.get_case(case_id, NOW).case.state == "new"
    edited = unedited.replace("[describe the setting or\nworkaround, only if there is one]",
                              "Settings > Editor > Classic")
    assert ana.post(f"/cases/{case_id}/respond", data={
        **anas, "text": edited, "template": "backlash-workaround"}).status_code == 303
    assert store.get_case(case_id, NOW).case.state == "responded"


# --- notices ------------------------------------------------------------------------------------

def test_failures_are_told_as_errors_and_a_url_cannot_forge_a_notice(site) -> None:
    app, store, config, _clock = site
    done = file(store, config, "p1")
    cases.resolve(store, done, actor="bo", now=NOW)
    ana, bo = login(app, "ana"), login(app, "bo")
    csrf = tokens(ana.get("/").text)["csrf"]
    failed = ana.post("/inbox/bulk", data={"csrf": csrf, "action": "resolve", "case": [done]})
    said = httpx.URL(failed.headers["location"]).params
    assert said["kind"] == "error" and said["msg"].startswith("resolve: 0 cases done; 1 not")
    shown = ana.get(failed.headers["location"]).text
    assert re.search(r'<p class="error" role="alert">resolve: 0 cases done; 1 not', shown)
    reason = ana.post("/inbox/bulk", data={"csrf": csrf, "action": "dismiss", "case": [done]})
    assert httpx.URL(reason.headers["location"]).params["kind"] == "error"
    assert "needs a reason" in ana.get(reason.headers["location"]).text

    phishing = "Your password expired: send it to it-support@evil.test"
    for path in ("/", "/themes", "/admin"):
        for kind in ("ok", "error"):
            page = login(app, "root").get(f"{path}?msg={phishing}&kind={kind}&sig=abc").text
            assert "it-support@evil.test" not in page, path
    # a notice made for one session is not shown in another's
    assert "1 not" not in bo.get(failed.headers["location"]).text


# --- what must never be a 500 --------------------------------------------------------------------

def test_impossible_ids_are_404_or_400_never_500(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1")
    ana, root = login(app, "ana"), login(app, "root")
    _html, anas = _case_page(ana, case_id)
    huge, enormous = str(2**63), "9" * 23
    for path in (f"/cases/{huge}", f"/cases/{'9' * 5000}", "/cases/x1"):
        assert ana.get(path).status_code == 404, path
    for path in (f"/cases/{huge}/claim", f"/cases/{huge}/presence", f"/cases/{huge}/leave",
                 "/cases/999999/presence", "/cases/999999/respond"):
        answer = ana.post(path, data={**anas, "text": "x"})
        assert answer.status_code == 404, (path, answer.status_code)
    stale = ana.post(f"/cases/{case_id}/note", data={**anas, "seen": enormous, "text": "hi"})
    assert stale.status_code == 400 and _box(stale.text, "note-text") == "hi"
    assert ana.post(f"/cases/{case_id}/presence", data={**anas, "seen": enormous}) \
        .status_code == 200
    bulk = ana.post("/inbox/bulk", data={**anas, "action": "claim",
                                         "case": [enormous, str(case_id)]})
    assert f"no case {enormous}" in httpx.URL(bulk.headers["location"]).params["msg"]
    assert store.get_case(case_id, NOW).case.assignee == "ana"  # the real one was done
    expire = root.post(f"/admin/silences/{huge}/expire", data=tokens(root.get("/admin").text))
    assert "no active silence" in httpx.URL(expire.headers["location"]).params["msg"]
    assert ana.get(f"/?page={enormous}").status_code == 200
    assert ana.get(f"/inbox/fresh?after={enormous}").status_code == 200


# --- times, pages, filters, history -------------------------------------------------------------

def test_a_stale_action_names_the_time_in_the_configured_zone(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1")
    ana, anas, bo, bos = _both_open(app, case_id)
    bo.post(f"/cases/{case_id}/claim", data=bos)
    refused = ana.post(f"/cases/{case_id}/resolve", data=anas)
    assert refused.status_code == 409
    assert f"bo assigned case {case_id} at Tue 3 Nov 10:30 CET, after you opened it" \
        in refused.text  # 09:30 UTC, in Europe/Berlin like every time on the page
    assert "UTC" not in refused.text


def test_pages_past_the_end_and_unknown_filters_are_said(site) -> None:
    app, store, config, _clock = site
    for i in range(53):
        file(store, config, f"p{i}", language="fr" if i == 7 else None)
    ana = login(app, "ana")
    last = ana.get("/?page=99999").text
    assert "page 2 of 2" in last and re.search(r'href="\?[^"]*page=1" rel="prev"', last)
    assert len(re.findall(r'data-case="\d+"', last.split('id="cases"')[1])) == 3
    for path, said in (("/?state=bogus", "unknown state &#39;bogus&#39;"),
                       ("/?view=nonsense", "no saved view &#39;nonsense&#39;"),
                       ("/?severity=bogus", "unknown severity &#39;bogus&#39;")):
        page = ana.get(path)
        assert page.status_code == 200 and re.search(
            rf'<p class="error" role="alert">{said}', page.text), path
    assert _listed(ana, "/?language=FR") == _listed(ana, "/?language=fr") != []


def test_the_history_reads_as_a_sentence(site) -> None:
    app, store, config, _clock = site
    case_id = file(store, config, "p1")
    cases.assign(store, case_id, "bo", actor="lee", now=NOW, policy=config.policy)
    cases.dismiss(store, case_id, "spam", actor="ana", now=NOW)
    page = login(app, "ana").get(f"/cases/{case_id}").text
    history = re.sub(r"<[^>]+>|\s+", " ", page.split('class="history"')[1].split("</ol>")[0])
    assert "lee assigned to bo" in " ".join(history.split())
    assert "ana dismissed: spam" in " ".join(history.split())


def test_bidi_controls_are_isolated_and_kept_out_of_templates(site) -> None:
    app, store, config, _clock = site
    evil = "\u202eevil\u202c user"
    case_id = file(store, config, "p1", author=evil, title="\u202eBroken title")
    ana = login(app, "ana")
    for page in (ana.get("/").text, ana.get(f"/cases/{case_id}").text):
        assert f"<bdi>{evil}</bdi>" in page and "<bdi>\u202eBroken title</bdi>" in page
        assert not re.search(rf"[^>]{evil}|{evil}[^<]", page)  # nowhere without its <bdi>
    templates = re.findall(r'<textarea id="tpl-\d+"[^>]*>(.*?)</textarea>',
                           ana.get(f"/cases/{case_id}").text, re.DOTALL)
    assert templates and all("\u202e" not in t and "\u202c" not in t for t in templates)
    assert any("Hi evil user" in t for t in templates)


def test_a_response_recorded_before_its_case_opened_is_no_negative_time(site) -> None:
    """What the demo did (answered 2 minutes before "now", after the case was filed): the
    stats showed the -118 s as "1m", a time that went backwards passing for a forward one.
    Such an answer is a response at the opening (monitor.cases.respond): 0s."""
    app, store, config, _clock = site
    case_id = file(store, config, "p1", severity="critical")
    cases.respond(store, case_id, actor="ana", now=NOW - timedelta(minutes=2), text="answered")
    page = login(app, "lee").get("/stats").text
    row = re.search(r'<span class="sev">critical</span></th>(.*?)</tr>', page, re.DOTALL)
    assert row is not None and '<td class="num">0s</td>' in row.group(1), row


def test_a_negative_span_keeps_its_sign() -> None:
    from monitor.web.pages import span

    assert (span(-118), span(118), span(-90061), span(None)) == ("-1m", "1m", "-1d 1h", "-")
