"""Hostile configs (issue 15): whatever a config, source, rule or reply file holds,
`monitor check` either accepts it, and then a pass can run with it, or names the file and
key of each mistake. Never a traceback, a spinning daemon or gigabytes of memory."""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

import monitor.conditions as conditions
from monitor.cli import main
from monitor.config import load
from monitor.errors import ConfigError
from monitor.rules import compile_rules
from monitor.yamlfile import MAX_DEPTH, MAX_FILE_BYTES, read_yaml

pytestmark = pytest.mark.chaos

SOURCES = 'sources:\n  - {name: a, kind: rss, url: "https://example.com/a.xml"}\n'
RULES = "rules:\n  - {id: r1, when: {words: [redesign]}}\n"


def project(folder: Path, config: str = "", sources: str = SOURCES, rules: str = RULES,
            **more: str | bytes) -> Path:
    files: dict[str, str | bytes] = {"config.yaml": config, "sources/feeds.yaml": sources,
                                     "rules/pack.yaml": rules, **more}
    for name, content in files.items():
        path = folder / name.replace("__", "/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if isinstance(content, bytes):
            path.write_bytes(content)
        else:
            path.write_text(content)
    return folder / "config.yaml"


def problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load(path)
    return [str(p) for p in caught.value.problems]


# --- every duration, size and count is bounded ----------------------------------------------

@pytest.mark.parametrize(("config", "key"), [
    ("interval: 0", "interval"),                       # was silently 900 (0 is falsy)
    ("interval: 0.5", "interval"),
    ("interval: 31d", "interval"),
    ("quiet_after: 0", "quiet_after"),
    ("http: {total_timeout: .inf}", "http.total_timeout"),   # was accepted
    ("http: {connect_timeout: 0}", "http.connect_timeout"),
    ("http: {read_timeout: 2h}", "http.read_timeout"),
    ("http: {max_bytes: 16777217}", "http.max_bytes"),      # 16 MiB + 1
    ("concurrency: 33", "concurrency"),
    ("http: {backoff: 86400}", "http.backoff"),
    ("http: {max_retry_after: .nan}", "http.max_retry_after"),
    ("http: {source_deadline: .inf}", "http.source_deadline"),
    ("http: {pass_deadline: 2d}", "http.pass_deadline"),
    ("delivery: {backoff: 7h}", "delivery.backoff"),         # the doubling stops at 6h
    ("alerts: {stalled_after: 400d}", "alerts.stalled_after"),
    ("sla: {critical: 0}", "sla.critical"),
    ("sla: {low: 2000d}", "sla.low"),
    ("routing: {group_wait: 2d}", "routing.group_wait"),
    ("routing: {repeat_interval: 400d}", "routing.repeat_interval"),
    ("events: [{name: x, date: 2026-01-01, keywords: [x], days: 0}]", "events[0].days"),
    ("events: [{name: x, date: 9999-12-31, keywords: [x]}]", "events[0].date"),  # overflowed
    ("events: [{name: x, date: 0001-01-01, keywords: [x]}]", "events[0].date"),  # the window
])
def test_out_of_bounds_settings_name_their_key(tmp_path: Path, config: str, key: str) -> None:
    found = problems(project(tmp_path, config=config + "\n"))
    assert len(found) == 1 and found[0].startswith(f"config.yaml: {key}: "), found


@pytest.mark.parametrize("interval", ["0", "-5", "0s", "60d", ".inf"])
def test_a_source_interval_out_of_bounds_is_refused(tmp_path: Path, interval: str) -> None:
    """``interval: -5`` once passed check and made the daemon spin; 0 silently meant 900."""
    sources = SOURCES.replace("}", f", interval: {interval}}}")
    found = problems(project(tmp_path, sources=sources))
    assert len(found) == 1 and found[0].startswith("sources/feeds.yaml: sources[0].interval: ")


def test_bounds_that_hold_are_kept(tmp_path: Path) -> None:
    config = load(project(tmp_path, config=(
        "interval: 1s\nquiet_after: 365d\nconcurrency: 32\nhttp: {total_timeout: 1h, "
        "max_bytes: 16777216, backoff: 0}\nrouting: {group_wait: 0}\n"),
        sources=SOURCES.replace("}", ", interval: 30d}")))
    assert config.main.interval == 1 and config.source("a").interval == 30 * 86400
    assert config.main.http.total_timeout == 3600 and config.main.routing.group_wait == 0
    assert config.main.concurrency == 32 and config.main.http.max_bytes == 16 * 1024 ** 2


def test_bound_messages_say_the_bounds(tmp_path: Path) -> None:
    assert problems(project(tmp_path, config="interval: 0\n")) == [
        "config.yaml: interval: must be at least 1s and at most 30d"]


# --- YAML that would eat the machine --------------------------------------------------------

def laughs(levels: int = 9) -> str:
    """The billion laughs: each line is nine aliases of the one before (9^9 values)."""
    lines = ["l0: &l0 [lol, lol, lol, lol, lol, lol, lol, lol, lol]"]
    lines += [f"l{i}: &l{i} [{', '.join([f'*l{i - 1}'] * 9)}]" for i in range(1, levels)]
    return "\n".join(lines) + "\n"


_MEASURE = """
import resource, sys, time
resource.setrlimit(resource.RLIMIT_AS, (3 * 1024 ** 3, 3 * 1024 ** 3))  # a safety net only
from monitor.config import load
from monitor.errors import ConfigError
started = time.monotonic()
try:
    load(sys.argv[1])
except ConfigError as error:
    print(error)
print("seconds", time.monotonic() - started)
# this process's peak (ru_maxrss would count the forked copy of pytest before exec)
status = open("/proc/self/status").read()
print("peak_kib", status.split("VmHWM:")[1].split()[0])
"""


@pytest.mark.skipif(not Path("/proc/self/status").exists(), reason="reads Linux's VmHWM")
def test_an_alias_bomb_is_refused_fast_and_small(tmp_path: Path) -> None:
    """It once took `monitor check` to 6.7 GB; now it is refused before a value is built."""
    config = project(tmp_path, config=laughs())
    done = subprocess.run([sys.executable, "-c", _MEASURE, str(config)], capture_output=True,
                          text=True, timeout=60)
    assert done.returncode == 0, done.stderr[-2000:]
    lines = dict(line.rsplit(" ", 1) for line in done.stdout.splitlines()[-2:])
    assert "config.yaml: line " in done.stdout and "aliases" in done.stdout
    assert float(lines["seconds"]) < 2
    assert int(lines["peak_kib"]) < 300 * 1024   # far below 500 MB


@pytest.mark.parametrize("where", ["sources__feeds.yaml", "rules__pack.yaml",
                                   "rules__replies.yaml"])
def test_an_alias_bomb_is_refused_in_every_file(tmp_path: Path, where: str) -> None:
    config = project(tmp_path, **{where: laughs()})
    shown = where.replace("__", "/")
    started = time.monotonic()
    found = problems(config)
    assert time.monotonic() - started < 2
    assert any(p.startswith(f"{shown}: line 6: holds more than") for p in found), found


def test_deep_nesting_is_refused_not_a_recursion_error(tmp_path: Path) -> None:
    """5,000 nested lists once raised RecursionError (a traceback from `monitor check`)."""
    deep = "interval: " + "[" * 500 + "]" * 500 + "\n"
    assert problems(project(tmp_path, config=deep)) == [
        f"config.yaml: line 1: nested more than {MAX_DEPTH} levels deep"]
    deeper = "interval: " + "[" * 5000 + "]" * 5000 + "\n"   # libyaml's own limit says so
    assert problems(project(tmp_path, config=deeper))[0].startswith("config.yaml: line 1: ")
    block = "".join(f"{'  ' * i}k{i}:\n" for i in range(200))
    assert problems(project(tmp_path, rules=block))[0].startswith(
        "rules/pack.yaml: line 101: nested more than")


def test_an_alias_inside_its_own_anchor_is_refused(tmp_path: Path) -> None:
    """PyYAML builds ``&x [*x]`` as a list that holds itself: walking it never ends."""
    assert problems(project(tmp_path, config="vip_authors: &x [a, *x]\n")) == [
        "config.yaml: line 1: alias *x is inside its own anchor &x: an endless loop"]


def test_a_file_over_the_size_cap_is_refused_unread(tmp_path: Path) -> None:
    padding = "# " + "x" * 100 + "\n"
    big = SOURCES + padding * (MAX_FILE_BYTES // len(padding) + 1)
    assert problems(project(tmp_path, sources=big)) == [
        "sources/feeds.yaml: larger than 1 MiB: too large for a config, source, rule or "
        "reply file"]


@pytest.mark.parametrize(("text", "line", "key"), [
    ("interval: 5m\nconcurrency: 2\ninterval: 1h\n", 3, "interval"),
    ("http: {retries: 1, retries: 3}\n", 1, "retries"),
    ("routing:\n  routes:\n    - match: {source: a}\n      match: {source: b}\n", 4, "match"),
])
def test_a_key_given_twice_is_a_mistake(tmp_path: Path, text: str, line: int, key: str) -> None:
    """PyYAML silently keeps the last: the first was surely meant too."""
    found = problems(project(tmp_path, config=text))
    assert len(found) == 1 and found[0].startswith(
        f"config.yaml: line {line}: key {key!r} given twice"), found


@pytest.mark.parametrize(("files", "shown", "line"), [
    ({"config": "events: [{name: x, date: 2026-02-30, keywords: [x]}]\n"}, "config.yaml", 1),
    ({"sources": SOURCES + "  - {name: b, kind: rss, url: 'https://e.com/b', tags: [x]}\n"
      "  - {name: c, kind: rss, url: 'https://e.com/c', tags: [2026-13-01]}\n"},
     "sources/feeds.yaml", 4),
    ({"rules": "rules:\n  - {id: r1, when: {words: [2026-02-31]}}\n"}, "rules/pack.yaml", 2),
])
def test_a_date_no_calendar_has_names_its_file_and_line(tmp_path: Path, files: dict[str, str],
                                                        shown: str, line: int) -> None:
    """PyYAML raised a bare ValueError (a traceback from every command, check included)."""
    found = problems(project(tmp_path, **files))
    assert found == [f"{shown}: line {line}: {found[0].split(': ', 2)[2]}"], found
    assert "is not a date" in found[0] and "quote it" in found[0]
    result = CliRunner().invoke(main, ["check", "--config", str(tmp_path / "config.yaml")])
    assert result.exit_code == 2 and "is not a date" in result.output


def test_merge_keys_may_still_be_overridden(tmp_path: Path) -> None:
    path = tmp_path / "merge.yaml"
    path.write_text("base: &b {a: 1, c: 2}\nthis:\n  <<: *b\n  a: 5\n")
    assert read_yaml(path, "merge.yaml")["this"] == {"a": 5, "c": 2}


@pytest.mark.parametrize("content", [b"interval: \xff\xfe\n", b"\x00\x01"])
def test_a_file_not_utf8_or_binary_is_a_config_error(tmp_path: Path, content: bytes) -> None:
    found = problems(project(tmp_path, **{"sources__more.yaml": content}))
    assert len(found) == 1 and found[0].startswith("sources/more.yaml: "), found


def test_a_folder_named_like_a_file_is_a_config_error(tmp_path: Path) -> None:
    config = project(tmp_path)
    (tmp_path / "rules" / "folder.yaml").mkdir()
    assert problems(config) == ["rules/folder.yaml: not a regular file"]


# --- rules -----------------------------------------------------------------------------------

def nested_not(depth: int) -> dict[str, Any]:
    when: dict[str, Any] = {"words": ["x"]}
    for _ in range(depth):
        when = {"not": when}
    return when


def test_deeply_nested_conditions_are_a_mistake_naming_the_rule() -> None:
    """3,000 nested ``not:`` once raised RecursionError."""
    for depth in (40, 3000):
        with pytest.raises(ConfigError) as caught:
            compile_rules([{"id": "deep", "when": nested_not(depth)}], "rules/x.yaml")
        (problem,) = caught.value.problems
        assert problem.file == "rules/x.yaml" and problem.key is not None
        assert problem.key.startswith("rules[0] (deep).when.not.not")
        assert problem.message.startswith(f"conditions nested more than "
                                          f"{conditions.MAX_DEPTH} deep")
    assert compile_rules([{"id": "ok", "when": nested_not(conditions.MAX_DEPTH - 1)}], "f")


def test_every_wrong_entry_of_a_group_is_named() -> None:
    when = {"all": [{"words": []}, {"angry": True}, {"colour": "red"},
                    {"any": [{"reach": {"min": "x"}}, {"vip": "maybe"}]}]}
    with pytest.raises(ConfigError) as caught:
        compile_rules([{"id": "r", "when": when}], "rules/x.yaml")
    assert [p.key for p in caught.value.problems] == [
        "rules[0] (r).when.all[0].words", "rules[0] (r).when.all[2].colour",
        "rules[0] (r).when.all[3].any[0].reach", "rules[0] (r).when.all[3].any[1].vip"]


def test_a_pattern_the_regex_engine_refuses_names_rule_and_key(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The engine (``monitor.textmatch``) may refuse a pattern it cannot run in bounded
    time with a ValueError; ``monitor check`` then names the rule and key."""
    def refuse(value: Any, file: str, key: str) -> Any:
        raise ValueError("backreferences are not supported")
    monkeypatch.setattr(conditions, "_regex", refuse)
    with pytest.raises(ConfigError) as caught:
        compile_rules([{"id": "slow", "when": {"regex": r"(a+)\1"}}], "rules/x.yaml")
    assert str(caught.value) == ("rules/x.yaml: rules[0] (slow).when.regex: not a usable "
                                 "regular expression (backreferences are not supported)")


# --- files read beside the rules ---------------------------------------------------------------

def test_a_broken_replies_file_fails_check(tmp_path: Path) -> None:
    """rules/replies.yaml was read only by `monitor queue show`: a mistake in it passed check."""
    replies = "replies:\n  - {id: a, title: T, text: 'Hi {nobody}', category: backlash}\n"
    config = project(tmp_path, **{"rules__replies.yaml": replies})
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert "rules/replies.yaml: replies[0].text: unknown placeholder {nobody}" in result.output


def test_a_good_replies_file_passes(tmp_path: Path) -> None:
    replies = "replies:\n  - {id: a, title: T, text: 'Hi {author}', category: backlash}\n"
    load(project(tmp_path, **{"rules__replies.yaml": replies}))


def test_a_word_list_over_the_cap_or_unreadable_is_a_config_error(tmp_path: Path) -> None:
    config = project(tmp_path, **{"rules__profanity.txt": b"word\n" * (MAX_FILE_BYTES // 4)})
    assert problems(config) == ["rules/profanity.txt: larger than 1 MiB: too large for a "
                                "word list"]
    (tmp_path / "rules" / "profanity.txt").write_bytes(b"\xffbad\n")
    assert problems(config)[0].startswith("rules/profanity.txt: cannot read")


# --- the store and source names -----------------------------------------------------------

@pytest.mark.parametrize(("store", "said"), [
    ("mysql://root:hunter2@db/monitor", "mysql:// is not supported"),
    ("postgresql+psycopg2://u:hunter2@db/m", "postgresql+psycopg2:// is not supported"),
    ("root:hunter2@db/monitor", "not a database URL"),
])
def test_only_the_supported_databases_pass(tmp_path: Path, store: str, said: str) -> None:
    (found,) = problems(project(tmp_path, config=f"store: {store!r}\n"))
    assert found.startswith(f"config.yaml: store: {said} (use sqlite:///")
    assert "hunter2" not in found


@pytest.mark.parametrize("store", ["sqlite:///x.db", "postgresql://u@h/d",
                                   "postgresql+psycopg://u@h/d"])
def test_supported_databases_pass(tmp_path: Path, store: str) -> None:
    load(project(tmp_path, config=f"store: {store!r}\n"))


@pytest.mark.parametrize("name", ["a\nb", "tab\there", "bell\x07", "del\x7f", " padded",
                                  "padded ", "x" * 101, "line\u2028sep"])
def test_a_source_name_is_one_printable_line(tmp_path: Path, name: str) -> None:
    sources = f"sources:\n  - {{name: {_quoted(name)}, kind: rss, url: 'https://e.com/'}}\n"
    (found,) = problems(project(tmp_path, sources=sources))
    assert found.startswith("sources/feeds.yaml: sources[0].name: must be 1 to 100 printable")


@pytest.mark.parametrize("name", ["Forum (DE) – Ärger", "x" * 100, "日本語のフォーラム"])
def test_a_plain_source_name_passes(tmp_path: Path, name: str) -> None:
    sources = f"sources:\n  - {{name: {_quoted(name)}, kind: rss, url: 'https://e.com/'}}\n"
    assert load(project(tmp_path, sources=sources)).sources[0].name == name


def _quoted(text: str) -> str:
    """``text`` as a YAML double-quoted scalar (JSON's escapes are YAML's)."""
    return json.dumps(text)


@pytest.mark.parametrize(("file", "text"), [
    ("rules__pack.yaml", 'rules:\n  - {id: " \\x85", when: {words: [x]}}\n'),
    ("rules__pack.yaml", 'rules:\n  - {id: "r\\n", when: {words: [x]}}\n'),
    ("rules__pack.yaml", 'rules:\n  - {id: r, when: {"a\\nb": 1}}\n'),
    ("config.yaml", '"bogus\\nerror: forged": 1\n'),
    ("sources__feeds.yaml", 'sources:\n  - {name: a, kind: rss, url: "https://e.com/", '
                            '"x\\ry": 1}\n'),
])
def test_each_mistake_stays_on_one_line(tmp_path: Path, file: str, text: str) -> None:
    """A key or rule id with a newline (or NEL) is quoted, never printed raw: it would split
    one mistake over two lines of `monitor check`, or forge a line."""
    result = CliRunner().invoke(main, ["check", "--config", str(project(tmp_path,
                                                                        **{file: text}))])
    assert result.exit_code == 2
    lines = result.stderr.splitlines()
    assert lines and all(line.startswith("error: ") for line in lines), result.stderr
    assert all(line.isprintable() for line in lines)


def test_a_huge_words_list_is_refused_not_compiled_for_minutes() -> None:
    """90,000 terms in one ``words:`` took 210 s to compile, at every pass."""
    words = [f"w{i}" for i in range(conditions.MAX_WORDS + 1)]
    started = time.monotonic()
    with pytest.raises(ConfigError) as caught:
        compile_rules([{"id": "many", "when": {"words": words}}], "rules/x.yaml")
    assert time.monotonic() - started < 1
    assert str(caught.value) == (f"rules/x.yaml: rules[0] (many).when.words: "
                                 f"{len(words)} words: at most {conditions.MAX_WORDS} in one "
                                 "condition (split them over several under any:)")
    assert compile_rules([{"id": "ok", "when": {"words": words[:-1]}}], "rules/x.yaml")


def test_a_regex_nested_thousands_deep_is_a_mistake() -> None:
    """Python's own pattern parser raised RecursionError on 2,000 nested groups."""
    with pytest.raises(ConfigError, match=r"rules\[0\] \(deep\)\.when\.regex: not a usable "
                                          r"regular expression \(nested too deeply\)"):
        compile_rules([{"id": "deep", "when": {"regex": "(" * 2000 + ")" * 2000}}], "f")


def test_check_refuses_a_pattern_the_safe_engine_cannot_run(tmp_path: Path) -> None:
    """A backreference cannot run in linear time: `monitor check` says so, naming the rule
    and key, and exits 2 (the engine is ``monitor.textmatch``'s)."""
    rules = "rules:\n  - {id: echo, when: {regex: '(a+)\\1'}}\n"
    result = CliRunner().invoke(main, ["check", "--config", str(project(tmp_path,
                                                                        rules=rules))])
    assert result.exit_code == 2
    assert result.stderr.startswith("error: rules/pack.yaml: rules[0] (echo).when.regex: ")


def test_reports_naming_a_file_is_a_config_mistake(tmp_path: Path) -> None:
    """It passed `check`, then the digest failed with exit 1 and a FileExistsError."""
    found = problems(project(tmp_path, config="reports: config.yaml\n"))
    assert found == ["config.yaml: reports: is a file, not a folder: reports are written "
                     "into a folder (made when missing)"], found
