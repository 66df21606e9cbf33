"""The registry: built-in kinds without any installed metadata, the same targets as
pyproject.toml, and the README's option tables generated from the Options models."""

from __future__ import annotations

import importlib.metadata
import re
import tomllib
from collections.abc import Iterator
from typing import Literal

import pytest
from conftest import REPO
from pydantic import BaseModel, Field, HttpUrl

from monitor.collectors.reddit import RedditCollector
from monitor.errors import ConfigError
from monitor.registry import (
    BUILTIN,
    GROUP,
    RECEIVER_GROUP,
    collector_class,
    kinds,
    options_table,
    receiver_class,
)
from monitor.units import Duration

LOADERS = {GROUP: collector_class, RECEIVER_GROUP: receiver_class}
BUILT_INS = [(group, name) for group in BUILTIN for name in BUILTIN[group]]


@pytest.fixture
def uninstalled(monkeypatch: pytest.MonkeyPatch) -> Iterator[None]:
    """As in a checkout that was never installed: no entry points at all."""
    monkeypatch.setattr(importlib.metadata, "entry_points", lambda **_: [])
    kinds.cache_clear()
    yield
    kinds.cache_clear()


def test_built_in_kinds_need_no_installed_metadata(uninstalled: None) -> None:
    assert collector_class("reddit") is RedditCollector
    assert receiver_class("slack").__name__ == "SlackReceiver"
    with pytest.raises(ConfigError, match=r"^unknown kind 'rs' \(known: discourse, forum, "
                       r"hackernews, reddit, rss\)$"):
        collector_class("rs")
    with pytest.raises(ConfigError, match=r"^unknown type 'sms' \(known: email, file, slack, "
                       r"webhook\)$"):
        receiver_class("sms")


def test_pyproject_registers_exactly_the_built_ins() -> None:
    declared = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]["entry-points"]
    assert {group: declared[group] for group in BUILTIN} == BUILTIN


@pytest.mark.parametrize(("group", "name"), BUILT_INS)
def test_every_option_of_every_kind_is_described(group: str, name: str) -> None:
    options = LOADERS[group](name).Options
    models = [options, *(f.annotation for f in options.model_fields.values()
                         if isinstance(f.annotation, type) and issubclass(f.annotation,
                                                                          BaseModel))]
    for model in models:
        for key, field in model.model_fields.items():
            assert field.description, f"{name}: {model.__name__}.{key} has no description"


def test_readme_option_tables_are_generated_from_the_models() -> None:
    """Each kind's table in README.md sits between ``<!-- options: KIND -->`` and
    ``<!-- /options -->``; after changing an Options model, paste the table shown here."""
    readme = (REPO / "README.md").read_text()
    tables = re.findall(r"<!-- options: (\S+) -->\n(.*?)\n<!-- /options -->", readme, re.S)
    assert sorted(name for name, _ in tables) == sorted(name for _, name in BUILT_INS)
    loaders = {name: LOADERS[group] for group, name in BUILT_INS}
    for name, table in tables:
        expected = options_table(loaders[name](name).Options)
        assert table == expected, f"README.md table of {name!r} should be:\n{expected}"


class _Inner(BaseModel):
    css: str | None = Field(None, description="a `selector`")


class _Example(BaseModel):
    url: HttpUrl = Field(description="where")
    mode: Literal["a", "b"] = Field("a", description="which")
    wait: Duration = Field(7 * 86400.0, gt=0, description="how long")
    since: Duration | None = Field(None, description="unset: all")
    pages: int = Field(5, ge=1, le=100, description="at most")
    names: list[str] = Field(default_factory=list, description="any")
    inner: _Inner = Field(default_factory=_Inner, description="nested")


def test_options_table_format() -> None:
    assert options_table(_Example) == """\
| option | type | default | description |
|---|---|---|---|
| `url` | URL | required | where |
| `mode` | a \\| b | `a` | which |
| `wait` | duration (> 0) | `7d` | how long |
| `since` | duration | none | unset: all |
| `pages` | int (1–100) | `5` | at most |
| `names` | list of string | `[]` | any |
| `inner` | mapping | – | nested |
| `inner.css` | string | none | a `selector` |"""
