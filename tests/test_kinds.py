"""``monitor kinds``: every kind, receiver type and rule condition, read from the code."""

from __future__ import annotations

import pytest
import yaml
from click.testing import CliRunner

from monitor.cli import main
from monitor.conditions import CONDITIONS
from monitor.registry import BUILTIN, GROUP, RECEIVER_GROUP
from monitor.rules import compile_rules


def kinds(*args: str) -> str:
    result = CliRunner().invoke(main, ["kinds", *args])
    assert result.exit_code == 0, result.output
    return result.output


def test_lists_every_kind_type_and_condition() -> None:
    listed = kinds()
    for group in (GROUP, RECEIVER_GROUP):
        for name, target in BUILTIN[group].items():
            assert f"\n  {name}  (built in: {target})\n" in listed
    for condition in CONDITIONS.values():
        assert f"  {condition.example}" in listed and condition.help in listed
    assert listed.index("Source kinds") < listed.index("Receiver types") \
        < listed.index("Rule conditions")


def test_an_option_shows_its_type_default_and_description() -> None:
    listed = kinds()
    assert "    backfill       duration (> 0)       7d                         how far back " \
           "the first pass reads (30m, 12h, 7d, or seconds)\n" in listed
    assert "    selectors.post          string" in listed  # a nested model's keys
    assert "`" not in listed  # the README's code marks are dropped in plain text


def test_names_narrow_the_listing() -> None:
    listed = kinds("slack", "vip")
    assert "  slack  (built in:" in listed and "webhook_url_file" in listed
    assert "  vip: true" in listed
    assert "rss" not in listed and "Source kinds" not in listed and "angry" not in listed


def test_an_unknown_name_is_a_usage_error() -> None:
    result = CliRunner().invoke(main, ["kinds", "rsss"])
    assert result.exit_code == 2
    assert "unknown kind 'rsss' (known: all, anger" in result.output


def test_help() -> None:
    result = CliRunner().invoke(main, ["kinds", "--help"])
    assert result.exit_code == 0
    assert "List source kinds, receiver types and rule conditions" in result.output
    assert "kinds" in CliRunner().invoke(main, ["--help"]).output


@pytest.mark.parametrize("name", list(CONDITIONS))
def test_each_conditions_example_compiles(name: str) -> None:
    """The examples ``monitor kinds`` shows are rules the compiler takes (all/any/not with
    one real condition inside)."""
    example = CONDITIONS[name].example.replace("[...]", "[{angry: true}]").replace(
        "{...}", "{angry: true}")
    when = yaml.safe_load(example)
    assert list(when) == [name]
    assert len(compile_rules([{"id": "x", "when": when}], "rules/x.yaml")) == 1
