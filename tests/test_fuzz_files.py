"""Hypothesis writes config.yaml, a source file and a rule pack from hostile pieces (wrong
types, huge and negative numbers, deep nesting, odd keys, broken YAML, control characters);
`monitor check` must answer 0, or 2 with one `error: FILE: ...` line per problem, and never
raise. Whatever `check` accepts must also load for a pass (`Runtime.of`)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st

from monitor.cli import main
from monitor.config import load
from monitor.runtime import Runtime

pytestmark = pytest.mark.chaos

ODD = st.one_of(
    st.none(), st.booleans(), st.integers(-10**20, 10**20),
    st.floats(allow_nan=True, allow_infinity=True), st.text(max_size=12),
    st.sampled_from(["-5", "0", "1s", "15m", ".inf", "999999999d", "${UNSET_FM_VAR}", "UTC",
                     "Europe", "sqlite:///x.db", "mysql://a/b", "http://127.0.0.1:9/f",
                     "ftp://x", "rss", "nope", "critical", "(a+)+$", "a\nb", "\x00"]),
    st.lists(st.text(max_size=5), max_size=3))
MAIN_KEYS = ["store", "timezone", "interval", "quiet_after", "concurrency", "http", "events",
             "vip_authors", "team", "sla", "assignment", "routing", "receivers", "delivery",
             "digest", "metrics", "alerts", "bogus"]
SOURCE_KEYS = ["name", "kind", "url", "interval", "tags", "follow_comments", "max_pages",
               "quiet_after", "subreddit", "bogus"]
RULE_KEYS = ["id", "severity", "category", "when", "tags", "bogus"]
WHEN_KEYS = ["words", "regex", "compound", "anger", "any", "all", "not", "source", "bogus"]


def nested(keys: list[str]) -> st.SearchStrategy[Any]:
    inner = st.recursive(ODD, lambda more: st.dictionaries(st.sampled_from(WHEN_KEYS), more,
                                                           max_size=3) | st.lists(more,
                                                                                  max_size=3),
                         max_leaves=8)
    return st.dictionaries(st.sampled_from(keys), st.one_of(ODD, inner), max_size=6)


def dump(value: Any) -> str:
    try:
        return yaml.safe_dump(value, allow_unicode=True)
    except yaml.YAMLError:
        return "not: [valid"


@settings(max_examples=150, deadline=None,
          suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])
@given(nested(MAIN_KEYS), st.lists(nested(SOURCE_KEYS), max_size=3),
       st.lists(nested(RULE_KEYS), max_size=3),
       st.sampled_from(["", "", "", "", "{", "a: b: c", "- ["]))
def test_check_answers_every_file_without_a_traceback(
        tmp_path_factory: Any, main_config: dict, sources: list, rules: list,
        garbage: str) -> None:
    folder: Path = tmp_path_factory.mktemp("fuzz")
    (folder / "sources").mkdir()
    (folder / "rules").mkdir()
    main_config = {k: v for k, v in main_config.items() if k != "store"}  # stays in folder
    (folder / "config.yaml").write_text(dump(main_config) + ("\n" + garbage if garbage else ""))
    (folder / "sources" / "a.yaml").write_text(dump({"sources": sources}))
    (folder / "rules" / "a.yaml").write_text(dump({"rules": rules}))
    result = CliRunner().invoke(main, ["check", "--config", str(folder / "config.yaml")])
    assert result.exception is None or isinstance(result.exception, SystemExit), \
        repr(result.exception)
    event(f"exit {result.exit_code}")
    assert result.exit_code in (0, 2), result.output
    if result.exit_code == 2:
        lines = result.stderr.splitlines()
        assert lines and all(line.startswith("error: ") for line in lines), result.stderr
        assert all(any(name in line for name in ("config.yaml", "sources/", "rules/"))
                   for line in lines), result.stderr
    else:  # accepted: it must also be runnable
        Runtime.of(load(folder / "config.yaml"))
