"""A user's own collector, registered by entry point, runs with no change to our code.

The collector is the example from README.md, taken from it verbatim, so the README's
example is known to work.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO
from loopback import LoopbackServer

from monitor.cli import main
from monitor.collectors.rss import RssCollector
from monitor.registry import collector_class, kinds


def readme_example() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Writing a collector"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.fixture
def install(tmp_path: Path) -> Iterator[Callable[[str], None]]:
    """Install the README's collector as the package ``my_guestbook`` on sys.path, with the
    entry points given (``entry_points.txt`` text), as pip would."""
    site = tmp_path / "site"

    def install(entry_points: str) -> None:
        package = site / "my_guestbook"
        package.mkdir(parents=True)
        (package / "__init__.py").write_text(readme_example())
        dist = site / "my_guestbook-1.0.dist-info"
        dist.mkdir()
        (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-guestbook\n"
                                       "Version: 1.0\n")
        (dist / "entry_points.txt").write_text(entry_points)
        sys.path.insert(0, str(site))
        kinds.cache_clear()

    yield install
    if str(site) in sys.path:
        sys.path.remove(str(site))
    sys.modules.pop("my_guestbook", None)
    kinds.cache_clear()


@pytest.fixture
def guestbook_plugin(install: Callable[[str], None]) -> None:
    """The README's collector, registered as ``kind: guestbook``."""
    install("[monitor.collectors]\nguestbook = my_guestbook:GuestbookCollector\n")


def test_readme_collector_runs_as_a_plugin(guestbook_plugin: None, server: LoopbackServer,
                                           make_project) -> None:
    entries = [{"id": 1, "name": "Ann", "message": "<p>The redesign is awful, I hate the new "
                "layout</p>", "time": "2026-11-02T08:00:00Z"},
               {"id": 2, "name": "Bo", "message": "Lovely update", "time": "2026-11-02T09:00:00Z"}]
    server.serve("/guestbook.json", body=json.dumps(entries).encode())
    config = make_project([{"name": "guestbook", "kind": "guestbook",
                            "url": server.url("/guestbook.json")}])
    runner = CliRunner()
    first = runner.invoke(main, ["run", "--config", str(config)])
    assert first.exit_code == 0, first.output
    assert "1 sources: 1 ok, 0 failed; 2 new posts, 1 flagged" in first.output
    second = runner.invoke(main, ["run", "--config", str(config)])
    assert "0 new posts" in second.output  # its cursor came back to it
    exported = runner.invoke(main, ["export", "posts", "--config", str(config)]).stdout
    ann = json.loads(exported.splitlines()[0])
    assert ann["text"] == "The redesign is awful, I hate the new layout"
    assert ann["published_at"] == "2026-11-02T08:00:00Z"


def test_plugin_options_are_validated(guestbook_plugin: None, make_project) -> None:
    config = make_project([{"name": "g", "kind": "guestbook", "url": "nope"}])
    result = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert result.exit_code == 2
    assert "error: sources/test.yaml: sources[0].url: not a valid URL" in result.output


def test_monitor_kinds_lists_a_plugin_with_its_options(guestbook_plugin: None) -> None:
    result = CliRunner().invoke(main, ["kinds"])
    assert result.exit_code == 0, result.output
    assert "  guestbook  (plugin: my_guestbook:GuestbookCollector)" in result.output
    assert re.search(r"\n    url +URL +required +serves a JSON list of \{\"id\", \"name\", "
                     r"\"message\", \"time\"\}\n", result.output)
    assert "  rss  (built in: monitor.collectors.rss:RssCollector)" in result.output


def test_a_plugin_cannot_replace_a_built_in_kind(install: Callable[[str], None],
                                                 caplog: pytest.LogCaptureFixture) -> None:
    install("[monitor.collectors]\nrss = my_guestbook:GuestbookCollector\n"
            "guestbook = my_guestbook:GuestbookCollector\n")
    assert collector_class("rss") is RssCollector
    assert collector_class("guestbook").__name__ == "GuestbookCollector"
    assert ("monitor.collectors 'rss': already built in as monitor.collectors.rss:RssCollector; "
            "ignoring my_guestbook:GuestbookCollector (from my-guestbook)") in caplog.text


def test_a_broken_plugin_is_listed_with_its_error(install: Callable[[str], None],
                                                  make_project) -> None:
    install("[monitor.collectors]\nbroken = my_guestbook:NoSuchCollector\n"
            "[monitor.receivers]\npager = no_such_module:Pager\n")
    result = CliRunner().invoke(main, ["kinds"])
    assert result.exit_code == 0, result.output
    assert ("  broken  (plugin: my_guestbook:NoSuchCollector)\n    kind 'broken' could not be "
            "loaded (module 'my_guestbook' has no attribute 'NoSuchCollector')") in result.output
    assert "  pager  (plugin: no_such_module:Pager)\n    type 'pager' could not be loaded" \
        in result.output
    config = make_project([{"name": "b", "kind": "broken"}])
    checked = CliRunner().invoke(main, ["check", "--config", str(config)])
    assert checked.exit_code == 2
    assert "sources[0].kind: kind 'broken' could not be loaded" in checked.output
