"""Config loading: every mistake names its file and key, and `monitor check` exits 2."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO

from monitor.cli import main
from monitor.config import load
from monitor.errors import ConfigError
from monitor.units import parse_duration


def write(folder: Path, files: dict[str, str]) -> Path:
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)
    return folder / "config.yaml"


GOOD_SOURCES = """\
sources:
  - {name: a, kind: rss, url: "https://example.com/a.xml"}
  - {name: b, kind: rss, url: "https://example.com/b.xml", interval: 5m, tags: [blog]}
"""
RULE = "rules:\n  - {id: r1, when: {words: [redesign]}}\n"


def project(tmp_path: Path, config: str = "", sources: str = GOOD_SOURCES,
            rules: str = RULE) -> Path:
    return write(tmp_path, {"config.yaml": config, "sources/feeds.yaml": sources,
                            "rules/backlash.yaml": rules})


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path)
    return [str(p) for p in caught.value.problems]


def test_shipped_config_is_valid() -> None:
    config = load(REPO / "config.yaml")
    assert config.sources and config.rules.rules
    assert config.store_url == f"sqlite:///{(REPO / 'monitor.db').resolve()}"


def test_defaults_and_relative_paths(tmp_path: Path) -> None:
    config = load(project(tmp_path, config="interval: 10m\n"))
    assert [s.name for s in config.sources] == ["a", "b"]
    assert config.source("a").interval == 600 and config.source("b").interval == 300
    assert config.source("b").tags == ("blog",)
    assert config.reports_dir == tmp_path / "reports"
    assert config.store_url == f"sqlite:///{(tmp_path / 'monitor.db').resolve()}"
    assert str(config.timezone) == "UTC"


def test_absolute_and_server_store_urls_are_kept(tmp_path: Path) -> None:
    url = "postgresql+psycopg://me:secret@db.example/monitor"
    assert load(project(tmp_path, config=f"store: {url}\n")).store_url == url
    absolute = f"sqlite:///{tmp_path}/elsewhere.db"
    assert load(project(tmp_path, config=f"store: {absolute}\n")).store_url == absolute


def test_bad_url_names_file_and_key_path(tmp_path: Path) -> None:
    sources = GOOD_SOURCES + "  - {name: c, kind: rss, url: not a url}\n"
    assert problems(project(tmp_path, sources=sources)) == [
        "sources/feeds.yaml: sources[2].url: not a valid URL"]


def test_all_mistakes_are_reported_together(tmp_path: Path) -> None:
    sources = """\
sources:
  - {name: a, kind: rss, url: "https://example.com/a.xml"}
  - {name: a, kind: rss, url: "https://example.com/b.xml"}
  - {kind: rss, url: "https://example.com/c.xml", colour: red}
  - {name: d, kind: rsss, url: "https://example.com/d.xml"}
  - {name: e, kind: rss, url: "https://example.com/e.xml", interval: often}
"""
    found = problems(project(tmp_path, config="timezone: Mars/Olympus\nstores: x\n",
                             sources=sources))
    assert found[:2] == [  # config.yaml's mistakes first, and they do not hide the sources'
        "config.yaml: timezone: unknown time zone 'Mars/Olympus' (use e.g. UTC, Europe/Berlin)",
        "config.yaml: stores: unknown key",
    ]
    assert len(found) == 7
    assert "sources/feeds.yaml: sources[2].colour: unknown key" in found
    assert any(p.startswith("sources/feeds.yaml: sources[1].name: duplicate source name 'a'")
               for p in found)
    assert "sources/feeds.yaml: sources[2].name: required" in found
    assert ("sources/feeds.yaml: sources[3].kind: unknown kind 'rsss' (known: discourse, "
            "forum, hackernews, reddit, rss)") in found
    assert any(p.startswith("sources/feeds.yaml: sources[4].interval: not a duration")
               for p in found)


def test_environment_variables(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FEED_HOST", "news.example.org")
    sources = ('sources:\n  - {name: a, kind: rss, url: "https://${FEED_HOST}/feed",'
               ' tags: ["${TAG:-fallback}"]}\n')
    config = load(project(tmp_path, sources=sources))
    assert str(config.source("a").options.url) == "https://news.example.org/feed"
    assert config.source("a").tags == ("fallback",)
    monkeypatch.delenv("FEED_HOST")
    assert problems(project(tmp_path, sources=sources)) == [
        "sources/feeds.yaml: sources[0].url: environment variable FEED_HOST is not set"]


def test_yaml_syntax_error_names_the_line(tmp_path: Path) -> None:
    found = problems(project(tmp_path, sources="sources:\n  - name: a\n    url: [unclosed\n"))
    assert len(found) == 1 and found[0].startswith("sources/feeds.yaml: line ")
    assert "not valid YAML" in found[0]


def test_sources_file_without_a_list(tmp_path: Path) -> None:
    assert problems(project(tmp_path, sources="feeds: []\n")) == [
        "sources/feeds.yaml: sources: must hold a list of sources"]


def test_missing_folders_and_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="config.yaml: file not found"):
        load(tmp_path / "config.yaml")
    (tmp_path / "config.yaml").write_text("sources: nowhere/\nrules: none/\n")
    assert problems(tmp_path / "config.yaml") == ["nowhere: sources folder not found",
                                                  "none: rules folder not found"]


def test_rule_mistakes_name_rule_and_field(tmp_path: Path) -> None:
    rules = """\
rules:
  - {id: ok, when: {words: [fine]}}
  - {id: typo, when: {wrds: [x]}}
  - {id: badre, when: {regex: "(unclosed"}}
  - {id: sev, severity: urgent, when: {words: [x]}}
  - {id: deep, when: {all: [{compound: {max: -0.5}}, {any: [{compound: {below: 1}}]}]}}
  - {id: ok, when: {words: [again]}}
"""
    found = problems(project(tmp_path, rules=rules))
    assert any(p.startswith("rules/backlash.yaml: rules[1] (typo).when.wrds: unknown condition "
                            "'wrds' (known: all, any, not, words, regex, ") for p in found)
    assert any(p.startswith("rules/backlash.yaml: rules[2] (badre).when.regex: not a valid "
                            "regular expression") for p in found)
    assert any(p.startswith("rules/backlash.yaml: rules[3] (sev).severity:") for p in found)
    assert ("rules/backlash.yaml: rules[4] (deep).when.all[1].any[0].compound: must be "
            "{min: NUMBER} and/or {max: NUMBER}") in found
    assert "rules/backlash.yaml: rules[5] (ok).id: duplicate rule id (also rules[0])" in found


@pytest.mark.parametrize(("text", "seconds"), [(90, 90), ("45s", 45), ("15m", 900),
                                               ("2h", 7200), ("7d", 604800), ("1.5h", 5400)])
def test_durations(text: object, seconds: float) -> None:
    assert parse_duration(text) == seconds  # type: ignore[arg-type]


def test_check_command_reports_and_exits(tmp_path: Path) -> None:
    runner = CliRunner()
    good = runner.invoke(main, ["check", "--config", str(project(tmp_path))])
    assert good.exit_code == 0, good.output
    assert "sources: 2 in 1 file(s) (rss: 2)" in good.output
    assert "rules:   1 in 1 file(s)" in good.output
    bad = runner.invoke(main, ["check", "--config", str(project(
        tmp_path, sources=GOOD_SOURCES + "  - {name: c, kind: rss, url: nope}\n"))])
    assert bad.exit_code == 2
    assert "error: sources/feeds.yaml: sources[2].url: not a valid URL" in bad.output
    assert "Traceback" not in bad.output


def test_check_hides_store_password(tmp_path: Path) -> None:
    config = project(tmp_path, config="store: postgresql+psycopg://me:hunter2@db/monitor\n")
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 0 and "hunter2" not in result.output
    assert "postgresql+psycopg://me:***@db/monitor" in result.output


def test_events_and_vip_authors(tmp_path: Path) -> None:
    config = load(project(tmp_path, config=(
        "vip_authors: [Ann, bob_42]\nevents:\n"
        "  - {name: New editor, date: 2026-11-02, keywords: [new editor, toolbar]}\n"
        "  - {name: Pricing, date: '2026-11-20T09:30:00', keywords: [price], tags: [blog]}\n")))
    first, second = config.main.events
    assert (first.name, first.date.isoformat(), first.keywords) == (
        "New editor", "2026-11-02T00:00:00", ["new editor", "toolbar"])
    assert second.date.hour == 9 and second.tags == ["blog"]
    assert config.main.vip_authors == ["Ann", "bob_42"]
    assert problems(project(tmp_path, config="events:\n  - {name: x, date: soon, keywords: []}\n"
                            )) == [
        "config.yaml: events[0].date: Input should be a valid datetime or date, input is too "
        "short",
        "config.yaml: events[0].keywords: List should have at least 1 item after validation, "
        "not 0"]


def test_an_unreadable_word_file_is_a_config_error(make_project) -> None:
    """rules/profanity.txt in another encoding: `monitor check` names it and exits 2 (a
    daemon's reload refuses it the same way, instead of stopping)."""
    path = make_project([{"name": "blog", "kind": "rss", "url": "https://x.test/feed"}])
    (path.parent / "rules" / "profanity.txt").write_bytes(b"merde\n\xff\xfe caca\n")
    result = CliRunner().invoke(main, ["check", "--config", str(path)])
    assert result.exit_code == 2
    assert "rules/profanity.txt: cannot read" in result.output


# --- monitor check lists every mistake of every file at once ---------------------------------

BROKEN_CONFIG = """\
sources: feeds/
stores: sqlite:///x.db
http: {user_agent: "us (+${CONTACT_URL})"}
receivers:
  pager: {type: webhook, url: "https://hooks.example/p"}
alerts: {receivers: [pager, pagr]}
"""
BROKEN_SOURCES = """\
sources:
  - {name: "system:blog", kind: rss, url: "https://example.com/a.xml"}
  - {name: b, kind: rss, url: "https://${FEED_HOST}/b.xml"}
  - {name: c, kind: rss, url: not a url}
"""
BROKEN_RULES = "rules:\n  - {id: two, severity: urgent, when: {wrds: [x]}}\n"


def test_check_lists_every_mistake_of_every_file_at_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Unset variables, config.yaml's keys, the sources (in the folder the broken config
    names) and both mistakes of one rule: all in one run, each with file and key."""
    monkeypatch.delenv("CONTACT_URL", raising=False)
    monkeypatch.delenv("FEED_HOST", raising=False)
    config = write(tmp_path, {"config.yaml": BROKEN_CONFIG, "feeds/f.yaml": BROKEN_SOURCES,
                              "rules/r.yaml": BROKEN_RULES})
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert result.stderr.splitlines() == [
        "error: config.yaml: http.user_agent: environment variable CONTACT_URL is not set",
        "error: config.yaml: stores: unknown key",
        "error: config.yaml: alerts.receivers[1]: unknown receiver 'pagr' (configured: pager)",
        "error: feeds/f.yaml: sources[0].name: names starting with 'event:' or 'system:' are "
        "reserved (storms and the monitor's own alerts)",
        "error: feeds/f.yaml: sources[1].url: environment variable FEED_HOST is not set",
        "error: feeds/f.yaml: sources[2].url: not a valid URL",
        "error: rules/r.yaml: rules[0] (two).severity: Input should be 'low', 'medium', 'high' "
        "or 'critical'",
        "error: rules/r.yaml: rules[0] (two).when.wrds: unknown condition 'wrds' (known: all, "
        "any, not, words, regex, compound, pos, neu, neg, anger, change, churn, complaint, "
        "angry, language, source, kind, tag, author, vip, reach)",
    ]


def test_every_unset_variable_is_named_with_its_key(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    for name in ("DB_PASSWORD", "TEAM_LEAD", "FEED_TOKEN"):
        monkeypatch.delenv(name, raising=False)
    config = ('store: "postgresql+psycopg://me:${DB_PASSWORD}@db/monitor"\n'
              'vip_authors: [ann, "${TEAM_LEAD}"]\n')
    sources = ('sources:\n  - {name: a, kind: rss, url: "https://example.com/f?t=${FEED_TOKEN}",'
               ' tags: ["${FEED_TOKEN}"]}\n')
    assert problems(project(tmp_path, config=config, sources=sources)) == [
        "config.yaml: store: environment variable DB_PASSWORD is not set",
        "config.yaml: vip_authors[1]: environment variable TEAM_LEAD is not set",
        "sources/feeds.yaml: sources[0].url: environment variable FEED_TOKEN is not set",
        "sources/feeds.yaml: sources[0].tags[0]: environment variable FEED_TOKEN is not set"]


def test_a_broken_config_still_has_its_folders_checked(tmp_path: Path) -> None:
    """The folders config.yaml names are used even when its other keys are wrong; a folder
    key that is itself wrong falls back to its default."""
    write(tmp_path, {"mine/feeds.yaml": "sources:\n  - {name: a, kind: rss}\n",
                     "sources/feeds.yaml": "sources:\n  - {name: b, kind: rsss}\n",
                     "rules/r.yaml": RULE})
    (tmp_path / "config.yaml").write_text("sources: mine/\nconcurrency: many\nrules: [x]\n")
    assert problems(tmp_path / "config.yaml") == [
        "config.yaml: rules: Input should be a valid string",
        "config.yaml: concurrency: Input should be a valid integer, unable to parse string as "
        "an integer",
        "mine/feeds.yaml: sources[0].url: required"]


def test_alerts_name_configured_receivers_only(tmp_path: Path) -> None:
    receivers = "receivers:\n  ops: {type: webhook, url: \"https://hooks.example/ops\"}\n"
    assert load(project(tmp_path, config=receivers + "alerts: {receivers: [ops]}\n")
                ).main.alerts.receivers == ["ops"]
    assert problems(project(tmp_path, config=receivers + "alerts: {receivers: [ops, queue]}\n"
                            )) == [
        "config.yaml: alerts.receivers[1]: the outreach queue takes no alerts about the "
        "monitor itself: name a Slack, e-mail or webhook receiver"]
    assert problems(project(tmp_path, config="alerts: {receivers: [ops]}\n")) == [
        "config.yaml: alerts.receivers[0]: unknown receiver 'ops' (configured: none)"]


@pytest.mark.parametrize("name", ["event:New editor", "system:daemon"])
def test_storm_and_alert_source_names_are_reserved(tmp_path: Path, name: str) -> None:
    sources = f'sources:\n  - {{name: "{name}", kind: rss, url: "https://example.com/a"}}\n'
    assert problems(project(tmp_path, sources=sources)) == [
        "sources/feeds.yaml: sources[0].name: names starting with 'event:' or 'system:' are "
        "reserved (storms and the monitor's own alerts)"]
    fine = 'sources:\n  - {name: "events: launch", kind: rss, url: "https://example.com/a"}\n'
    assert load(project(tmp_path, sources=fine)).source("events: launch")


def test_a_sources_file_whose_entries_are_all_commented_out_has_none(tmp_path: Path) -> None:
    config = load(project(tmp_path, sources="sources:\n#  - {name: a, kind: rss}\n"))
    assert config.sources == ()


def test_check_warns_when_alerts_reach_no_one(tmp_path: Path) -> None:
    quiet = CliRunner().invoke(main, ["check", "--config", str(project(tmp_path))])
    assert quiet.exit_code == 0
    assert ("warning: config.yaml: alerts.receivers: none set, so the monitor's own alerts (a "
            "broken source, a dead delivery, a stalled daemon) go nowhere but the log and `monitor "
            "status`"
            ) in quiet.stdout
    told = CliRunner().invoke(main, ["check", "--config", str(project(tmp_path, config=(
        "receivers:\n  ops: {type: webhook, url: \"https://hooks.example/ops\"}\n"
        "alerts: {receivers: [ops]}\n")))])
    assert told.exit_code == 0 and "warning" not in told.output
    assert "  alerts:  ops" in told.stdout
