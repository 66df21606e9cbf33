"""The web inbox in a real browser (Debian's chromium driven by Playwright): a case worked from
new to resolved by keyboard alone, two people on one case seeing each other, a stale action
refused, roles and CSRF enforced, a hostile post kept inert, and the layout at 360 px.

Screenshots of the inbox and a case page (1280x800 and 360x800) are written to
``$MONITOR_SCREENSHOTS`` (else the test's tmp folder), whether the tests pass or not.
"""

from __future__ import annotations

import os
import re
import shutil
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from conftest import cheap_hasher

from monitor import accounts
from monitor import config as configuration
from monitor.model import Fetch, Flag, Post
from monitor.outbox import file_case
from monitor.queue import QueuePolicy
from monitor.store import Store
from monitor.store.schema import flags

try:
    from playwright.sync_api import Browser, BrowserContext, Page, expect, sync_playwright
except ImportError:  # pragma: no cover - the skip below says why
    sync_playwright = None

CHROMIUM = shutil.which("chromium")
pytestmark = [
    pytest.mark.skipif(sync_playwright is None,
                       reason="Python playwright is not installed (pip install playwright)"),
    pytest.mark.skipif(CHROMIUM is None,
                       reason="no chromium on PATH (Debian: apt-get install chromium); "
                              "Playwright's own browser download is not used"),
]

PASSWORD = "a long enough password"
USERS = {"ana": "staff", "bo": "staff", "lee": "lead", "root": "admin"}
POLL = 12_000  # ms: the presence poll runs every 5 s, so two polls and some slack
WIDE, NARROW = {"width": 1280, "height": 800}, {"width": 360, "height": 800}

HOSTILE_TITLE = "<script>alert(1)</script> and <style>body{display:none}</style>"
HOSTILE_AUTHOR = "<img src=x onerror=alert(2)>"
HOSTILE_URL = "javascript:alert(3)"
HOSTILE_TEXT = ('Look: <a href="javascript:alert(4)">x</a>\n'
                "<style>body{display:none}</style>\n"
                "[click](javascript:alert(5))\n"
                '<img src="http://example.invalid/track.png">\n'
                "<script>alert(1)</script>")


@dataclass
class Site:
    url: str
    store: Any
    cases: dict[str, int]
    app: Any


def _post(external_id: str, *, title: str, text: str, author: str | None = "carla",
          url: str | None = None, now: datetime) -> Post:
    return Post(source="forum", external_id=external_id,
                url=url or f"https://forum.example.test/t/{external_id}", author=author,
                title=title, text=text, published_at=now - timedelta(minutes=30),
                thread_id=external_id)


def _file(store: Any, post: Post, severity: str, now: datetime) -> int:
    """Save, flag and file ``post`` as the pipeline does (see tests/test_queue.py)."""
    store.save_fetch(post.source, "forum", Fetch((post,), None), now)
    stored = store.stored_post(post.source, post.external_id)
    reasons = (f"backlash: {post.external_id} is unhappy",)
    flag = Flag(severity=severity, rules=("backlash",), reasons=reasons, category="backlash")
    with store.engine.begin() as db:
        db.execute(flags.insert().values(post_id=stored.id, severity=severity,
                                         category="backlash", rules=["backlash"],
                                         reasons=list(reasons), tags=[], flagged_at=now,
                                         updated_at=now))
        return file_case(db, post_id=stored.id, post=post, flag=flag, vip=False, now=now,
                         group_key=f"thread:{post.source}:{post.thread_id}",
                         policy=QueuePolicy.of())


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Site]:
    from monitor.web.server import WebServer

    folder = tmp_path_factory.mktemp("web-project")
    (folder / "sources").mkdir()
    (folder / "rules").mkdir()
    now = datetime.now(UTC)
    settings = {"store": "sqlite:///monitor.db", "timezone": "Europe/Berlin",
                "team": [{"name": n} for n in ("ana", "bo", "lee")],
                "events": [{"name": "New editor", "date": (now - timedelta(days=2)).date(),
                            "keywords": ["editor"]}]}
    (folder / "config.yaml").write_text(yaml.safe_dump(settings))
    config = configuration.load(folder / "config.yaml")
    store = Store(config.store_url)
    for name, role in USERS.items():
        accounts.add_user(store, name, role, PASSWORD, now, hasher=cheap_hasher())
    normal = {  # key -> (severity, title)
        "storm": ("critical", "The new editor ate my whole draft"),
        "work": ("high", "Cannot find the export button in the new editor"),
        "stale": ("high", "Why did you move the sidebar?"),
        "presence": ("medium", "Dark mode is gone"),
        "csrf": ("low", "Fonts look smaller than before"),
        "last": ("low", "Minor: a typo on the settings page"),
    }
    found = {key: _file(store, _post(key, title=title, now=now,
                                     text=f"{title}.\nSince the editor update this is worse."),
                        severity, now)
             for key, (severity, title) in normal.items()}
    found["hostile"] = _file(store, _post("hostile", title=HOSTILE_TITLE, text=HOSTILE_TEXT,
                                          author=HOSTILE_AUTHOR, url=HOSTILE_URL, now=now),
                             "critical", now)
    server = WebServer(config, store, "127.0.0.1", 0)
    server.start()
    try:
        yield Site(server.url, store, found, server.app)
    finally:
        server.stop()
        store.close()


@pytest.fixture(scope="module")
def browser() -> Iterator[Browser]:
    with sync_playwright() as p:
        launched = p.chromium.launch(executable_path=CHROMIUM)
        yield launched
        launched.close()


@pytest.fixture
def shots(tmp_path: Path) -> Path:
    folder = Path(os.environ.get("MONITOR_SCREENSHOTS") or tmp_path)
    folder.mkdir(parents=True, exist_ok=True)
    return folder


@dataclass
class Opened:
    """The browser contexts a test opened (closed after it) and what their pages did."""

    browser: Browser
    site: Site
    sessions: dict[str, Any]
    contexts: list[BrowserContext] = field(default_factory=list)
    dialogs: list[str] = field(default_factory=list)
    requests: list[str] = field(default_factory=list)

    def page(self, viewport: dict[str, int] | None = None, as_user: str | None = None) -> Page:
        context = self.browser.new_context(
            viewport=viewport or WIDE,
            storage_state=self.sessions.get(as_user) if as_user else None)
        context.set_default_timeout(10_000)
        self.contexts.append(context)
        page = context.new_page()
        page.on("dialog", lambda d: (self.dialogs.append(d.message), d.dismiss()))
        page.on("request", lambda r: self.requests.append(r.url))
        return page

    def login(self, name: str, viewport: dict[str, int] | None = None,
              target: str = "") -> Page:
        """A page logged in as ``name`` at ``target``: through the login form the first time
        in the module, then in a new context with that session's cookie (a password check
        costs a second)."""
        page = self.page(viewport, as_user=name)
        page.goto(self.site.url + target)
        if name not in self.sessions:
            page.wait_for_url("**/login?next=**")
            page.fill("#name", name)
            page.fill("#password", PASSWORD)
            page.click("button[type=submit]")
            page.wait_for_url(self.site.url + target)
            self.sessions[name] = page.context.storage_state()
        expect(page.locator(".who")).to_contain_text(name)
        return page


@pytest.fixture(scope="module")
def sessions() -> dict[str, Any]:
    return {}


@pytest.fixture
def opened(browser: Browser, site: Site, sessions: dict[str, Any]) -> Iterator[Opened]:
    found = Opened(browser, site, sessions)
    yield found
    for context in found.contexts:
        context.close()


def history(site: Site, case_id: int) -> list[tuple[str | None, str, dict]]:
    detail = site.store.get_case(case_id, datetime.now(UTC))
    return [(e["actor"], e["action"], e["detail"] or {}) for e in detail.events]


def case_row(page: Page, case_id: int) -> Any:
    return page.locator(f"li.case[data-case='{case_id}']")


# --- a. a case from new to resolved, keyboard only --------------------------------------------

def test_a_case_worked_by_keyboard_alone(opened: Opened, site: Site) -> None:
    case_id = site.cases["work"]
    page = opened.page()
    page.goto(site.url)
    page.wait_for_url("**/login?next=**")
    expect(page.locator("#name")).to_be_focused()  # autofocus: the keyboard starts here
    page.keyboard.type("ana")
    page.keyboard.press("Tab")
    page.keyboard.type(PASSWORD)
    page.keyboard.press("Enter")
    page.wait_for_url(site.url)

    rows = [int(r) for r in page.locator("li.case").evaluate_all(
        "rows => rows.map(r => r.dataset.case)")]
    at = rows.index(case_id)
    assert 0 < at < len(rows) - 1, f"the case should have rows before and after it: {rows}"
    expect(page.locator("li.case.current")).to_have_attribute("data-case", str(rows[0]))
    for _ in range(at + 1):
        page.keyboard.press("j")
    expect(page.locator("li.case.current")).to_have_attribute("data-case", str(rows[at + 1]))
    page.keyboard.press("k")
    expect(page.locator("li.case.current")).to_have_attribute("data-case", str(case_id))

    page.keyboard.press("Enter")
    page.wait_for_url(f"{site.url}cases/{case_id}")
    facts = page.locator(".facts").first
    expect(facts.locator("strong").first).to_have_text("new")
    with page.expect_navigation():  # each action is a form sent: the page is drawn again
        page.keyboard.press("c")
    expect(facts).to_contain_text("assigned · ana")

    page.keyboard.press("r")
    expect(page.locator("#reply-text")).to_be_focused()
    page.keyboard.type("Posted: the export button moved to the File menu, sorry.")
    with page.expect_navigation():
        page.keyboard.press("Control+Enter")
    expect(facts).to_contain_text("responded · ana")
    expect(page.locator("ol.history")).to_contain_text("moved to the File menu")

    with page.expect_navigation():
        page.keyboard.press("e")
    expect(facts).to_contain_text("resolved · ana")
    expect(page.locator("button[data-key=o]")).to_be_visible()  # closed: only reopen is left

    case = site.store.get_case(case_id, datetime.now(UTC)).case
    assert (case.state, case.assignee) == ("resolved", "ana")
    done = [(actor, action) for actor, action, _ in history(site, case_id) if actor]
    assert done == [("ana", "assigned"), ("ana", "responded"), ("ana", "resolved")]
    said = [d for _, action, d in history(site, case_id) if action == "responded"]
    assert said == [{"text": "Posted: the export button moved to the File menu, sorry."}]
    assert [d for _, a, d in history(site, case_id) if a == "assigned"][0]["assignee"] == "ana"
    assert opened.dialogs == []


# --- b. presence ------------------------------------------------------------------------------

def test_b_two_people_see_each_other_on_a_case(opened: Opened, site: Site) -> None:
    target = f"cases/{site.cases['presence']}"
    bo = opened.login("bo", target=target)
    expect(bo.locator("#presence .presence")).to_have_count(0)  # alone on the case so far
    ana = opened.login("ana", target=target)
    expect(ana.locator("#presence .presence")).to_have_text(["bo is viewing"])  # never oneself

    # bo starts writing his reply; his page says so at its next poll, ana's shows it at hers,
    # and bo's poll brings ana, who came after his page was drawn
    bo.click("#reply-text")
    expect(bo.locator("#activity")).to_have_value("replying")
    bo.keyboard.type("Hi there")
    expect(bo.locator("#presence .presence")).to_have_text(["ana is viewing"], timeout=POLL)
    expect(ana.locator("#presence .presence.replying")).to_have_text("bo is replying",
                                                                     timeout=POLL)
    expect(ana.locator("#presence .presence")).to_have_count(1)


# --- c. a stale action is refused -------------------------------------------------------------

def test_c_stale_action_refused(opened: Opened, site: Site) -> None:
    case_id = site.cases["stale"]
    target = f"cases/{case_id}"
    ana = opened.login("ana", target=target)
    bo = opened.login("bo", target=target)

    with bo.expect_navigation():
        bo.click("button[data-key=e]")
    expect(bo.locator(".facts strong").first).to_have_text("resolved")
    expect(ana.locator(".facts strong").first).to_have_text("new")  # her page is stale

    # ana's page still shows the case open: she dismisses it by keyboard (d, a reason, Enter)
    ana.keyboard.press("d")
    expect(ana.locator("#reason")).to_be_focused()
    ana.keyboard.type("duplicate")
    with ana.expect_response(f"**/{target}/dismiss") as answer:
        ana.keyboard.press("Enter")
    assert answer.value.status == 409
    alert = ana.locator("main p.error[role=alert]")
    expect(alert).to_contain_text(f"bo resolved case {case_id} at ")
    expect(alert).to_contain_text("after you opened it: nothing was changed")
    expect(ana.locator(".facts strong").first).to_have_text("resolved")  # drawn anew
    expect(ana.locator("ol.history")).to_contain_text("bo resolved")

    case = site.store.get_case(case_id, datetime.now(UTC)).case
    assert (case.state, case.reason) == ("resolved", None)
    assert [(actor, action) for actor, action, _ in history(site, case_id) if actor] == [
        ("bo", "resolved")]


# --- d. roles ---------------------------------------------------------------------------------

def refused(page: Page, url: str) -> None:
    answer = page.goto(url)
    assert answer is not None and answer.status == 403, (url, answer and answer.status)
    expect(page.locator("h1")).to_have_text("Not for your role")


def test_d_staff_refused_a_lead_page(opened: Opened, site: Site) -> None:
    page = opened.login("ana")
    expect(page.locator("nav[aria-label=Pages] a")).to_have_text(["Inbox"])
    for path in ("stats", "sources", "launches", "digests"):
        refused(page, site.url + path)
    # the same pages open for a lead: the 403 above is about the role, not the page
    lead = opened.login("lee", target="stats")
    expect(lead.locator("h1")).not_to_have_text("Not for your role")
    expect(lead.locator("nav[aria-label=Pages] a")).to_have_text(
        ["Inbox", "Launches", "Digests", "Stats", "Themes", "Sources"])
    # and what a lead may do on a case page, a staff member may not (assigning)
    case_id = site.cases["last"]
    page.goto(f"{site.url}cases/{case_id}")
    expect(page.locator("#person")).to_have_count(0)
    token = page.locator("body").get_attribute("data-csrf")
    answer = page.context.request.post(f"{site.url}cases/{case_id}/assign", max_redirects=0,
                                       form={"csrf": token or "", "person": "bo"})
    assert answer.status == 403
    assert site.store.get_case(case_id, datetime.now(UTC)).case.assignee is None


def test_d_staff_and_lead_refused_the_admin_page(opened: Opened, site: Site) -> None:
    if not any(getattr(r, "path", None) == "/admin" for r in site.app.routes):
        pytest.skip("the web inbox has no /admin page yet (monitor/web: admin pages not built)")
    refused(opened.login("ana"), site.url + "admin")
    refused(opened.login("lee"), site.url + "admin")
    admin = opened.login("root", target="admin")
    expect(admin.locator("h1")).not_to_have_text("Not for your role")


# --- e. CSRF ----------------------------------------------------------------------------------

def test_e_post_without_csrf_refused(opened: Opened, site: Site) -> None:
    case_id = site.cases["csrf"]
    page = opened.login("ana", target=f"cases/{case_id}")
    seen = page.locator("input[name=seen]").first.input_value()
    token = page.locator("body").get_attribute("data-csrf")
    assert token
    before = site.store.get_case(case_id, datetime.now(UTC))

    request = page.context.request
    for form in ({"seen": seen}, {"seen": seen, "csrf": "forged"}):
        for action in ("resolve", "claim"):
            answer = request.post(f"{site.url}cases/{case_id}/{action}", form=form,
                                  max_redirects=0)
            assert answer.status == 403, (action, form, answer.status)
            assert "no valid CSRF token" in answer.text()
    answer = request.post(f"{site.url}inbox/bulk", max_redirects=0,
                          form={"action": "resolve", "case": str(case_id), "back": "/"})
    assert answer.status == 403

    after = site.store.get_case(case_id, datetime.now(UTC))
    assert (after.case.state, after.case.assignee, len(after.events)) == (
        before.case.state, before.case.assignee, len(before.events)) == ("new", None, 1)

    # the session and the request are fine otherwise: with the page's token it is accepted
    answer = request.post(f"{site.url}cases/{case_id}/presence",
                          headers={"X-CSRF-Token": token}, form={"seen": seen})
    assert answer.status == 200


# --- f. a hostile post stays inert ------------------------------------------------------------

def test_f_hostile_post_stays_inert(opened: Opened, site: Site, shots: Path) -> None:
    case_id = site.cases["hostile"]
    page = opened.login("ana")
    console: list[str] = []
    page.on("console", lambda m: console.append(m.text))

    def inert() -> None:
        page.wait_for_load_state("load")
        expect(page.locator("body")).to_be_visible()
        assert page.evaluate("getComputedStyle(document.body).display") != "none"
        hrefs = page.locator("a[href]").evaluate_all(
            "links => links.map(a => a.getAttribute('href'))")
        assert not [h for h in hrefs if h.strip().lower().startswith(("javascript:", "data:"))]
        assert page.locator("main script, main style, main img, main iframe, main object, "
                            "main [onerror]").count() == 0
        assert page.locator("script").count() == 2  # htmx and ours, nothing else
        assert page.locator("style").count() == 0

    row = case_row(page, case_id)
    expect(row.locator("a.title")).to_contain_text("<script>alert(1)</script>")
    expect(row.locator(".meta")).to_contain_text(HOSTILE_AUTHOR)
    inert()
    page.screenshot(path=shots / "inbox-hostile-wide.png", full_page=True)

    row.locator("a.title").click()
    page.wait_for_url(f"{site.url}cases/{case_id}")
    expect(page.locator("h1")).to_contain_text("<script>alert(1)</script>")
    expect(page.locator(".post-title")).to_contain_text("<style>body{display:none}</style>")
    post = page.locator("article.post")
    expect(post.locator("header strong")).to_have_text(HOSTILE_AUTHOR)
    expect(post.locator("header .url")).to_have_text(HOSTILE_URL)  # shown, not a link
    for said in ('<a href="javascript:alert(4)">x</a>', "[click](javascript:alert(5))",
                 '<img src="http://example.invalid/track.png">'):
        expect(post.locator(".text")).to_contain_text(said)
    inert()
    # the reply templates quote the author: as text in a textarea, copied as text
    page.keyboard.press("1")
    expect(page.locator("#reply-text")).to_have_value(
        page.locator("#tpl-1").input_value())
    page.screenshot(path=shots / "case-hostile-wide.png", full_page=True)
    page.wait_for_timeout(300)  # anything the page would still fetch or run

    assert opened.dialogs == []
    assert [u for u in opened.requests
            if not u.startswith((site.url, "data:"))] == [], opened.requests
    assert not [m for m in console if "Content Security Policy" in m], console


# --- g. keys, and the layout at 360 px --------------------------------------------------------

def test_g_help_search_and_narrow_layout(opened: Opened, site: Site, shots: Path) -> None:
    page = opened.login("lee")
    page.screenshot(path=shots / "inbox-wide.png", full_page=True)
    help_box = page.locator("dialog#keys")
    expect(help_box).to_be_hidden()
    page.keyboard.press("?")
    expect(help_box).to_be_visible()
    expect(help_box).to_contain_text("next / previous case")
    page.screenshot(path=shots / "keys-help-wide.png")
    page.keyboard.press("Escape")
    expect(help_box).to_be_hidden()
    page.keyboard.press("/")
    expect(page.locator("#q")).to_be_focused()
    page.keyboard.type("sidebar")
    expect(page.locator("#q")).to_have_value("sidebar")  # typing there is no shortcut
    expect(help_box).to_be_hidden()
    page.goto(f"{site.url}cases/{site.cases['storm']}")
    page.screenshot(path=shots / "case-wide.png", full_page=True)

    narrow = opened.login("lee", viewport=NARROW)
    for target, name in (("", "inbox-narrow.png"),
                         (f"cases/{site.cases['storm']}", "case-narrow.png"),
                         (f"cases/{site.cases['hostile']}", "case-hostile-narrow.png")):
        narrow.goto(site.url + target)
        narrow.screenshot(path=shots / name, full_page=True)
        width = narrow.evaluate("document.documentElement.scrollWidth")
        assert width <= 360 + 2, f"{target or 'the inbox'} scrolls sideways: {width}px wide"
    assert opened.dialogs == []


# --- h. drafts outlive an ended session and someone else's change ------------------------------

def drafts_kept(page: Page) -> list[str]:
    return page.evaluate("Object.keys(localStorage).filter(k => k.startsWith('fm-draft:'))")


def log_in_here(page: Page, name: str) -> None:
    page.wait_for_url("**/login?next=**")
    page.fill("#name", name)
    page.fill("#password", PASSWORD)
    page.click("button[type=submit]")


def test_h_a_reply_outlives_an_ended_session(opened: Opened, site: Site, shots: Path) -> None:
    now = datetime.now(UTC)
    case_id = _file(site.store, _post("draft-session", title="My drafts vanished", now=now,
                                      text="Where did my drafts go?"), "medium", now)
    if accounts.get_user(site.store, "cat") is None:  # her own: her session is ended here
        accounts.add_user(site.store, "cat", "staff", PASSWORD, now, hasher=cheap_hasher())
    page = opened.page()
    page.goto(f"{site.url}cases/{case_id}")
    log_in_here(page, "cat")
    page.wait_for_url(f"{site.url}cases/{case_id}")
    reply = "Posted: your drafts are under File > Recover; sorry for the scare."
    page.locator("#reply-text").press_sequentially(reply[:20])
    page.locator("#reply-text").fill(reply)

    site.store.end_sessions(datetime.now(UTC), user="cat")  # idle too long, say
    warning = page.locator("#session-ended")
    expect(warning).to_be_visible(timeout=POLL)  # the presence poll was refused
    expect(warning).to_contain_text("your draft is kept")
    expect(warning.locator("a")).to_have_attribute("href", f"/login?next=/cases/{case_id}")
    page.screenshot(path=shots / "case-session-ended.png", full_page=True)

    with page.expect_navigation():
        page.click("button[data-key=r]")  # sent anyway: refused, nothing recorded
    expect(page.locator("h1")).to_have_text("Logged out")
    page.get_by_role("link", name="Log in again").click()
    log_in_here(page, "cat")
    page.wait_for_url(f"{site.url}cases/{case_id}")
    expect(page.locator("#reply-text")).to_have_value(reply)  # from this browser
    assert drafts_kept(page) == [f"fm-draft:cat:{case_id}:reply"]

    with page.expect_navigation():
        page.click("button[data-key=r]")
    expect(page.locator("main p.notice")).to_have_text("Your reply is recorded.")
    assert drafts_kept(page) == []  # recorded by the server: forgotten here
    said = [d for actor, action, d in history(site, case_id) if action == "responded"]
    assert said == [{"text": reply}]
    page.reload()
    expect(page.locator("ol.history")).to_contain_text("scare")
    assert opened.dialogs == []


def test_h_a_reply_outlives_someone_elses_change(opened: Opened, site: Site,
                                                 shots: Path) -> None:
    now = datetime.now(UTC)
    case_id = _file(site.store, _post("draft-stale", title="Export is gone", now=now,
                                      text="Where is export?"), "medium", now)
    target = f"cases/{case_id}"
    ana = opened.login("ana", target=target)
    bo = opened.login("bo", target=target)
    reply = "Posted: export is in the File menu now."
    ana.locator("#reply-text").fill(reply)
    ana.locator("#note-text").fill("She asked twice")

    with bo.expect_navigation():
        bo.click("button[data-key=c]")  # bo takes it while ana writes
    with ana.expect_response(f"**/{target}/resolve") as answer:
        ana.click("button[data-key=e]")
    assert answer.value.status == 409
    expect(ana.locator("main p.error[role=alert]")).to_contain_text("bo assigned case")
    expect(ana.locator("#reply-text")).to_have_value(reply)  # her page drawn anew, her words
    expect(ana.locator("#note-text")).to_have_value("She asked twice")

    with bo.expect_navigation():
        bo.click("button[data-key=e]")  # and now bo resolves it
    with ana.expect_response(f"**/{target}/respond") as answer:
        ana.click("button[data-key=r]")
    assert answer.value.status == 409
    kept = ana.locator(".kept-draft")
    expect(kept).to_be_visible()  # resolved: nothing can be recorded, but it is all there
    expect(kept.locator("textarea")).to_have_value(reply)
    ana.screenshot(path=shots / "case-kept-draft-wide.png", full_page=True)
    ana.reload()
    expect(kept.locator("textarea")).to_have_value(reply)  # from this browser
    assert [a for a, action, _ in history(site, case_id) if action == "responded"] == []


# --- i. text that turns itself around, a phone's first look, a long name -----------------------

READS_LEFT_TO_RIGHT = """(element, after) => {
  const walker = document.createTreeWalker(element, NodeFilter.SHOW_TEXT);
  for (let node = walker.nextNode(); node; node = walker.nextNode()) {
    const at = node.data.indexOf(after);
    if (at < 0) { continue; }
    const left = i => {
      const range = document.createRange();
      range.setStart(node, i);
      range.setEnd(node, i + 1);
      return range.getBoundingClientRect().left;
    };
    return left(at + 1) < left(at + after.length - 1);
  }
  return null;
}"""
"""Whether the words ``after`` (found in ``element``) are laid out left to right: their first
letter left of their last."""


def test_i_an_override_in_a_name_turns_nothing_else_around(opened: Opened, site: Site,
                                                            shots: Path) -> None:
    now = datetime.now(UTC)
    author = "\u202eevil user"  # a right-to-left override, never closed
    case_id = _file(site.store, _post("bidi", title="\u202eTurned title", author=author,
                                      now=now, text="Hello"), "critical", now)
    page = opened.login("ana")
    meta = case_row(page, case_id).locator(".meta")
    expect(meta).to_contain_text(" on forum")
    assert meta.evaluate(READS_LEFT_TO_RIGHT, " on forum") is True
    page.goto(f"{site.url}cases/{case_id}")
    assert page.locator(".facts").nth(1).evaluate(READS_LEFT_TO_RIGHT, " on forum") is True
    assert page.locator("article.post header").evaluate(READS_LEFT_TO_RIGHT,
                                                        " on forum") is True
    page.keyboard.press("1")  # a template, filled with the name: no control comes along
    copied = page.locator("#reply-text").input_value()
    assert copied.startswith("Hi evil user") and "\u202e" not in copied
    page.screenshot(path=shots / "case-bidi-wide.png", full_page=True)


def test_i_a_phone_opens_the_inbox_at_its_top(opened: Opened, site: Site, shots: Path) -> None:
    page = opened.login("lee", viewport={"width": 360, "height": 640})  # the list starts below
    first = page.locator("li.case").first
    expect(first).to_have_class(re.compile(r"\bcurrent\b"))  # the first row is current ...
    page.wait_for_timeout(200)
    assert page.evaluate("window.scrollY") == 0  # ... without scrolling down to it
    assert first.evaluate("row => row.getBoundingClientRect().top") > 640  # (it is below)
    page.screenshot(path=shots / "inbox-narrow-top.png")
    for _ in range(6):
        page.keyboard.press("j")  # a key does scroll: the row moved to is in view
    current = page.locator("li.case.current")
    expect(current).to_be_in_viewport()
    assert page.evaluate("window.scrollY") > 0


def test_i_a_long_account_name_wraps_in_the_admin_table(opened: Opened, site: Site,
                                                         shots: Path) -> None:
    name = "a" * accounts.MAX_NAME
    if accounts.get_user(site.store, name) is None:
        accounts.add_user(site.store, name, "staff", PASSWORD, datetime.now(UTC),
                          hasher=cheap_hasher())
    page = opened.login("root", target="admin")
    button = page.get_by_role("button", name=f"Disable {name}")
    box = button.bounding_box()
    assert box is not None and box["x"] + box["width"] <= WIDE["width"], box
    table = page.locator("table.users")
    assert table.evaluate("t => t.parentElement.scrollWidth <= t.parentElement.clientWidth")
    page.screenshot(path=shots / "admin-long-name-wide.png", full_page=True)
