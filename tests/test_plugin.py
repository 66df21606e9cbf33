"""A user's own collector, registered by entry point, runs with no change to our code.

The collector is the example from README.md, taken from it verbatim, so the README's
example is known to work.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner
from conftest import REPO
from loopback import LoopbackServer

from monitor.cli import main
from monitor.registry import kinds


def readme_example() -> str:
    readme = (REPO / "README.md").read_text()
    section = readme[readme.index("## Writing a collector"):]
    return re.search(r"```python\n(.*?)```", section, re.S).group(1)  # type: ignore[union-attr]


@pytest.fixture
def guestbook_plugin(tmp_path: Path) -> Iterator[None]:
    """Install the README's collector as a package with an entry point, on sys.path."""
    package = tmp_path / "site" / "my_guestbook"
    package.mkdir(parents=True)
    (package / "__init__.py").write_text(readme_example())
    dist = tmp_path / "site" / "my_guestbook-1.0.dist-info"
    dist.mkdir()
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: my-guestbook\nVersion: 1.0\n")
    (dist / "entry_points.txt").write_text(
        "[monitor.collectors]\nguestbook = my_guestbook:GuestbookCollector\n")
    sys.path.insert(0, str(tmp_path / "site"))
    kinds.cache_clear()
    yield
    sys.path.remove(str(tmp_path / "site"))
    sys.modules.pop("my_guestbook", None)
    kinds.cache_clear()


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
