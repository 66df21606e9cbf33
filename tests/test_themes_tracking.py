"""Fix everything twice (issue 18, part 3): complaint themes tracked from the cases' posts,
the same theme found again the next week, marked fixed and called out when it comes back,
exported (CSV a spreadsheet never runs, JSON, a signed webhook), on the CLI and the web page;
on SQLite and PostgreSQL."""

from __future__ import annotations

import csv
import io
import json
import re
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from webkit import NOW, Clock, add_accounts, file, load, login, project, tokens

from monitor import themes
from monitor.cli import main
from monitor.receivers.webhook import verify
from monitor.store import Store
from monitor.store.themes import FoundTheme, Link
from monitor.web.app import create_app

SYNC = ["The watch does not sync with the app anymore",
        "Sync keeps failing between watch and phone",
        "Again the sync with my watch failed overnight",
        "La synchronisation de la montre ne marche plus",
        "Watch sync broken after the update, no data"]
BATTERY = ["Battery drains in two hours since the update",
           "The battery drain is terrible, dead by noon",
           "Battery life is awful now, drains overnight",
           "Ma batterie se vide en deux heures",
           "Huge battery drain while idle"]
MORE_SYNC = ["My watch will not sync at all this week", "Sync with the watch fails every morning",
             "Watch sync stuck at 50 percent", "The watch sync is broken again",
             "La montre ne se synchronise pas", "Sync between phone and watch is failing",
             "Watch sync error again today"]
WEEK = timedelta(days=7)
SECRET = "s3cret-key"


@pytest.fixture
def setup(store_url: str, tmp_path: Path) -> Any:
    """A project (Europe/Berlin) whose store has five cases about sync and five about the
    battery, published just before ``NOW``, tracked once."""
    path = project(tmp_path, store_url)
    config = load(path)
    store = Store(config.store_url)
    _file(store, config, "s", SYNC, NOW)
    _file(store, config, "b", BATTERY, NOW)
    themes.track(store, config, NOW)
    yield path, config, store
    store.close()


def _file(store: Store, config: Any, prefix: str, texts: list[str], now: Any) -> list[int]:
    return [file(store, config, f"{prefix}{now:%j}-{i}", title="", text=text, now=now)
            for i, text in enumerate(texts)]


def _key(store: Store, word: str) -> str:
    (key,) = [t["key"] for t in store.list_themes() if word in t["key"]]
    return key


def _cli(path: Path, *args: str, **env: str) -> Any:
    return CliRunner().invoke(main, [*args, "--config", str(path)], env=env)


def test_two_problems_make_two_themes_each_linked_to_its_cases(setup: Any) -> None:
    _path, _config, store = setup
    found = store.list_themes()
    assert len(found) == 2
    sync, battery = _key(store, "sync"), _key(store, "battery")
    assert sync == themes.theme_key(store.get_theme(sync)["label"])
    assert {c["id"] for c in store.theme_cases(sync)} == {1, 2, 3, 4, 5}  # French one too
    assert {c["id"] for c in store.theme_cases(battery)} == {6, 7, 8, 9, 10}
    assert [t["label"] for t in store.themes_of_case(9)] == [store.get_theme(battery)["label"]]


def test_the_key_is_the_labels_words_normalised() -> None:
    assert themes.theme_key("Dark Mode / contrast") == "contrast-dark-mode"
    assert themes.theme_key(["contrast", "dark modes", "settings"]) == "contrast-dark-mode"
    assert themes.theme_key("Données / synchronisation") == themes.theme_key(
        "synchronisation / donnees")


def test_found_again_next_week_is_the_same_theme_trending_up(setup: Any) -> None:
    _path, config, store = setup
    sync = _key(store, "sync")
    later = NOW + WEEK
    _file(store, config, "s", MORE_SYNC, later)
    assert themes.track(store, config, later).posts == len(MORE_SYNC)
    assert _key(store, "sync") == sync and len(store.list_themes()) == 2
    week = {w.key: w for w in themes.weekly(store, config.timezone, later.date())}
    assert (week[sync].this_week, week[sync].last_week, week[sync].trend) == (7, 5, "up")
    battery = week[_key(store, "battery")]
    assert (battery.this_week, battery.last_week, battery.trend) == (0, 5, "down")
    first = {w.key: w for w in themes.weekly(store, config.timezone, NOW.date())}
    assert first[sync].trend == "new" and first[sync].total == 12


def test_tracked_once_a_day(setup: Any) -> None:
    _path, config, store = setup
    assert themes.track_if_due(store, config, NOW + timedelta(hours=23)) is None
    assert themes.track_if_due(store, config, NOW + timedelta(hours=25)) is not None


def test_a_fixed_theme_that_comes_back_is_called_out(setup: Any) -> None:
    path, config, store = setup
    sync = _key(store, "sync")
    done = _cli(path, "themes", "fix", "sync / watch", "--in", "2.4.1", "--note", "new BLE stack",
                MONITOR_USER="lee")
    assert done.exit_code == 0, done.output
    fixed = store.get_theme(sync)
    assert (fixed["fixed_in"], fixed["fixed_note"], fixed["fixed_by"]) == (
        "2.4.1", "new BLE stack", "lee")
    assert not any(w.returning for w in themes.weekly(store, config.timezone, NOW.date()))
    later = NOW + timedelta(days=3)  # fixed_at is the real clock's now: come back after it
    later = max(later, fixed["fixed_at"] + timedelta(hours=1))
    _file(store, config, "s", MORE_SYNC, later)
    themes.track(store, config, later)
    week = {w.key: w for w in themes.weekly(store, config.timezone, later.date())}
    assert week[sync].returning and week[sync].back == len(MORE_SYNC)
    assert [k for k, w in week.items() if w.returning] == [sync]
    shown = _cli(path, "themes", "show", sync)
    assert shown.exit_code == 0 and "BACK after the fix" in shown.output
    assert "BACK: 7 cases" in _cli(path, "themes", "list").output
    assert _cli(path, "themes", "unfix", sync).exit_code == 0
    assert store.get_theme(sync)["fixed_at"] is None


def _hostile(store: Store) -> None:
    store.save_themes([FoundTheme("cmd-calc", "=cmd|' /C calc'!A0 / @SUM(1)",
                                  (Link(1, 1, NOW),))], NOW)


def test_export_csv_is_safe_for_spreadsheets_and_json_has_stable_keys(setup: Any) -> None:
    path, _config, store = setup
    _hostile(store)
    out = _cli(path, "themes", "export", "--format", "csv")
    assert out.exit_code == 0, out.output
    rows = list(csv.DictReader(io.StringIO(out.stdout)))
    assert len(rows) == 3 and list(rows[0]) == list(themes.FIELDS)
    evil = next(r for r in rows if r["key"] == "cmd-calc")
    assert evil["label"].startswith("'=")
    assert all(not v.startswith(("=", "+", "@", "-")) for r in rows for v in r.values())
    out = _cli(path, "themes", "export")
    data = json.loads(out.stdout)
    assert data["version"] == 1 and data["exported_at"].endswith("Z")
    sync = next(t for t in data["themes"] if "sync" in t["key"])
    assert list(sync) == list(themes.FIELDS) and sync["case_ids"] == [1, 2, 3, 4, 5]
    assert sync["first_seen_at"].endswith("Z") and sync["fixed_at"] is None


def test_export_webhook_posts_signed_json(setup: Any, hook: Any) -> None:
    path, _config, store = setup
    done = _cli(path, "themes", "export", "--webhook", hook.url(),
                MONITOR_WEBHOOK_SECRET=SECRET)
    assert done.exit_code == 0, done.output
    (hit,) = hook.hits
    assert len(hit.json["themes"]) == 2
    assert verify(SECRET, hit.headers["x-monitor-signature"], hit.body)
    assert re.fullmatch(rf"themes:\d+@{store.store_id()}", hit.key)  # this store's export
    hook.status = 500
    failed = _cli(path, "themes", "export", "--webhook", hook.url("/in?token=abcdefghijkl"))
    assert failed.exit_code == 1
    assert failed.stderr.count("\n") == 1 and "HTTP 500" in failed.stderr
    assert "Traceback" not in failed.output and "abcdefghijkl" not in failed.stderr


def test_the_export_key_is_unique_per_store_and_kept_on_a_retry(tmp_path: Path,
                                                                 hook: Any) -> None:
    """Two installations exporting at the same second never share an Idempotency-Key (an
    intake would drop the second as a duplicate); one store POSTing again keeps its key."""
    body = themes.to_json([], NOW)
    for name in ("first", "second", "first"):
        with Store(f"sqlite:///{tmp_path / name}.db") as store:
            themes.post(hook.url(), body, SECRET, now=NOW, store_id=store.store_id())
            if name == "first":
                first_id = store.store_id()
    first, other, again = (hit.key for hit in hook.hits)
    assert first == again == f"themes:{int(NOW.timestamp())}@{first_id}"
    assert other != first and other.startswith(f"themes:{int(NOW.timestamp())}@")

def test_export_to_a_configured_receiver(setup: Any, hook: Any) -> None:
    path, _config, _store = setup
    settings = yaml.safe_load(path.read_text())
    settings["receivers"] = {"tracker": {"type": "webhook", "url": hook.url("/themes"),
                                         "secret": SECRET, "headers": {"Authorization": "t"}}}
    path.write_text(yaml.safe_dump(settings))
    done = _cli(path, "themes", "export", "--receiver", "tracker")
    assert done.exit_code == 0, done.output
    (hit,) = hook.hits
    assert hit.path == "/themes" and hit.headers["authorization"] == "t"
    assert verify(SECRET, hit.headers["x-monitor-signature"], hit.body)
    assert _cli(path, "themes", "export", "--receiver", "nope").exit_code == 2


@pytest.mark.parametrize(("args", "code"), [
    (("themes", "show", "no-such-theme"), 1),
    (("themes", "fix", "no-such-theme", "--in", "2.4"), 1),
    (("themes", "unfix", "no-such-theme"), 1),
    (("themes", "fix", "sync"), 2),  # no --in
    (("themes", "export", "--webhook", "http://127.0.0.1:9/", "--receiver", "x"), 2),
    (("themes", "export", "--webhook", "http://127.0.0.1:9/", "--format", "csv"), 2),
    (("themes", "list", "--days", "0"), 2),
    (("themes", "export", "--webhook", "http://127.0.0.1:9/in"), 1),  # nobody listens
])
def test_cli_exit_codes(setup: Any, args: tuple[str, ...], code: int) -> None:
    path, _config, _store = setup
    result = _cli(path, *args)
    assert result.exit_code == code, result.output
    assert "Traceback" not in result.output


def test_list_as_json(setup: Any) -> None:
    path, _config, _store = setup
    data = json.loads(_cli(path, "themes", "list", "--json").stdout)
    assert sorted(t["cases_total"] for t in data) == [5, 5]


def test_the_web_page_for_leads_and_the_case_page(setup: Any) -> None:
    path, config, store = setup
    add_accounts(store)
    app = create_app(config, store, Clock())
    sync = _key(store, "sync")
    lead = login(app, "lee")
    page = lead.get("/themes")
    assert page.status_code == 200 and store.get_theme(sync)["label"] in page.text
    done = lead.post(f"/themes/{sync}/fix", data={**tokens(page.text), "fixed_in": "2.4.1",
                                                  "note": "new BLE stack"})
    assert done.status_code == 303 and store.get_theme(sync)["fixed_in"] == "2.4.1"
    assert store.get_theme(sync)["fixed_by"] == "lee"
    assert "fixed in 2.4.1" in lead.get("/themes").text
    assert lead.post(f"/themes/{sync}/fix", data={"fixed_in": "3"}).status_code == 403  # no csrf
    case = lead.get("/cases/1").text
    assert "Themes:" in case and "fixed in 2.4.1" in case and "back again" not in case
    staff = login(app, "ana")
    assert staff.get("/themes").status_code == 403
    csrf = tokens(staff.get("/").text)
    assert staff.post(f"/themes/{sync}/unfix", data=csrf).status_code == 403
    assert store.get_theme(sync)["fixed_in"] == "2.4.1"
    assert "Themes:" in staff.get("/cases/1").text
    back = _file(store, config, "s", MORE_SYNC, NOW + timedelta(days=1))
    themes.track(store, config, NOW + timedelta(days=1))
    assert "back again" in lead.get(f"/cases/{back[0]}").text


def test_monitor_run_tracks_when_due_and_never_fails_for_it(
        setup: Any, monkeypatch: pytest.MonkeyPatch) -> None:
    from monitor.pipeline import run_once

    _path, config, store = setup
    run_once(config, store)
    assert store.themes_tracked_at() > NOW  # a day old: tracked again

    def broken(*_args: Any) -> None:
        raise RuntimeError("grouping broke")

    monkeypatch.setattr(themes, "track_if_due", broken)
    assert run_once(config, store).scored == 0


def test_the_digest_shows_the_weeks_themes_and_calls_out_one_back_after_its_fix(
        setup: Any) -> None:
    from monitor.reports import digest, render

    path, config, store = setup
    sync = _key(store, "sync")
    store.fix_theme(sync, "2.4.1", "new BLE stack", "lee", NOW - timedelta(days=30))
    made = digest.build(store, NOW.date(), config.timezone, now=NOW)
    shown = {t.key: t for t in made.themes_shown}
    assert set(shown) == {sync, _key(store, "battery")}
    assert shown[sync].returning and shown[sync].back == len(SYNC)
    html = render.render_html(made, None)
    markdown = render.render_markdown(made)
    assert "What keeps coming back" in html and "Back after its fix in 2.4.1" in html
    assert f"**Back after its fix in 2\\.4.1:** **{shown[sync].label}**: 5 cases" in markdown
    quiet = digest.build(store, (NOW + 3 * WEEK).date(), config.timezone, now=NOW + 3 * WEEK)
    assert [t.key for t in quiet.themes_shown] == [sync]  # back after its fix: never dropped
