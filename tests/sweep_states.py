"""The three store states the command sweep (test_sweep.py) runs every command on, each built
once through the ``monitor`` commands themselves:

* ``empty``: the repo's own config, sources and rules in a fresh folder, no pass run yet;
* ``full``: one of everything: a flag at each severity, a case in each state, a note, a
  silence, a backlash storm, a dead delivery and a failed source;
* ``demo``: the folder ``monitor demo --dir`` leaves.

Their configs say ``http: {retries: 0}`` (as conftest's ``make_project``): a pass whose
sources are out of reach fails at once instead of backing off for seconds.
"""

from __future__ import annotations

import json
import shutil
import socket
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from xml.sax.saxutils import escape

import yaml
from click.testing import CliRunner
from loopback import LoopbackServer

from monitor.cli import main

REPO = Path(__file__).resolve().parent.parent
EVENT = "New editor"
LABELLED_FILE = "labelled.jsonl"  # in each state's folder, for `rules test`

RULES = """\
rules:
  - {id: furious, severity: critical, category: backlash, when: {words: [furious]}}
  - {id: hate, severity: high, category: backlash, when: {words: [hate]}}
  - {id: slow, severity: medium, category: complaint, when: {words: [slow]}}
  - {id: meh, severity: low, category: unhappy, when: {words: [meh]}}
"""
FLAGGED = ["I am furious, you deleted my drafts", "The app is slow on Mondays",
           "Meh, the colours are dull"]  # critical, medium, low; the burst's posts are high
BURST = "I hate the new editor, it is awful"  # 12 authors in one hour: a storm
LABELLED = [{"text": "I hate the new editor", "label": "backlash"},
            {"text": "The app is slow", "label": "complaint"},
            {"text": "Lovely weather", "label": "none"}]


@dataclass(frozen=True)
class State:
    """A project folder and the values its commands' arguments take."""

    name: str
    folder: Path
    case_id: int = 1      # an existing case when there is one
    silence_id: int = 1   # an existing silence when there is one


def cli(*args: str, code: int = 0) -> str:
    """Run ``monitor ARGS`` in this process; its output, once it exited with ``code``."""
    result = CliRunner().invoke(main, list(args), catch_exceptions=False)
    assert result.exit_code == code, f"monitor {' '.join(args)}: {result.output}"
    return result.output


def empty(folder: Path) -> State:
    folder.mkdir(parents=True)
    shutil.copy(REPO / "config.yaml", folder)
    for name in ("sources", "rules"):
        shutil.copytree(REPO / name, folder / name)
    _no_retries(folder / "config.yaml")
    _labelled(folder)
    return State("empty", folder)


def demo(folder: Path) -> State:
    cli("demo", "--dir", str(folder))
    _no_retries(folder / "config.yaml")
    _labelled(folder)
    return State("demo", folder, case_id=_cases(folder / "config.yaml")[0]["id"])


def full(folder: Path) -> State:
    """A pass over a served feed and an unreachable one, then the queue commands."""
    now = datetime.now(UTC).replace(second=0, microsecond=0)
    closed = closed_port()
    (folder / "sources").mkdir(parents=True)
    (folder / "rules").mkdir()
    (folder / "rules" / "sweep.yaml").write_text(RULES)
    _labelled(folder)
    config = folder / "config.yaml"
    config.write_text(yaml.safe_dump({
        "store": {"url": "sqlite:///monitor.db", "retention": "400d"},
        "http": {"retries": 0, "connect_timeout": 2, "read_timeout": 2, "total_timeout": 5},
        "events": [{"name": EVENT, "date": (now - timedelta(days=3)).date().isoformat(),
                    "keywords": ["new editor"]}],
        "team": [{"name": "ana"}, {"name": "ben"}], "assignment": "none",
        "routing": {"receivers": ["queue", "hook"]},
        "receivers": {"hook": {"type": "webhook", "url": f"http://127.0.0.1:{closed}/hook"}},
        "delivery": {"max_attempts": 1}}))
    server = LoopbackServer()
    try:
        (folder / "sources" / "sweep.yaml").write_text(yaml.safe_dump({"sources": [
            {"name": "forum", "kind": "rss", "url": server.serve("/feed", body=_feed(now))},
            {"name": "gone", "kind": "rss", "url": f"http://127.0.0.1:{closed}/feed"}]}))
        cli("run", "--config", str(config), code=1)  # "gone" failed
    finally:
        server.httpd.shutdown()
        server.httpd.server_close()
    found = _cases(config)
    assert {c["severity"] for c in found} == {"critical", "high", "medium", "low"}, found
    assert any(c["group_key"].startswith("thread:event:") for c in found), "no storm"
    first = {c["severity"]: c["id"] for c in reversed(found)}
    c = ("--config", str(config), "--as", "ana")
    cli("queue", "assign", str(first["critical"]), "ana", *c)
    cli("queue", "assign", str(first["high"]), "ben", *c)
    cli("queue", "respond", str(first["high"]), *c)
    cli("queue", "note", str(first["high"]), "Answered on the forum", *c)
    cli("queue", "resolve", str(first["medium"]), *c)
    cli("queue", "dismiss", str(first["low"]), "--reason", "nothing to answer", *c)
    cli("silence", "add", "--match", "author=troll", "--for", "1d", "--reason", "a troll",
        "--config", str(config))
    assert {c["state"] for c in _cases(config)} == {
        "new", "assigned", "responded", "resolved", "dismissed"}
    cli("status", "--config", str(config), code=1)  # the dead deliveries
    return State("full", folder, case_id=first["high"])


def _no_retries(config: Path) -> None:
    settings = yaml.safe_load(config.read_text())
    settings["http"] = {**settings.get("http", {}), "retries": 0}
    config.write_text(yaml.safe_dump(settings))


def _labelled(folder: Path) -> None:
    """A small JSON-lines file of labelled samples for ``rules test``."""
    (folder / LABELLED_FILE).write_text("".join(json.dumps(s) + "\n" for s in LABELLED))


def _cases(config: Path) -> list[dict]:
    return json.loads(cli("queue", "list", "--state", "all", "--json", "--config", str(config)))


def closed_port() -> int:
    """A loopback port nobody listens on (bound, then let go)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _feed(now: datetime) -> bytes:
    """An Atom feed: a post flagged at each severity, a calm post three days before, and a
    burst of angry posts about the launch in the current hour."""
    posts = [("old", "Trying the new editor today", now - timedelta(days=3))]
    posts += [(f"s{i}", text, now - timedelta(hours=2 + i))
              for i, text in enumerate(FLAGGED)]
    posts += [(f"b{i}", BURST, now) for i in range(12)]
    entries = "".join(
        f"<entry><title>{escape(text)}</title><id>tag:sweep,2026:{key}</id>"
        f'<link rel="alternate" href="https://forum.example/t/{key}"/>'
        f"<author><name>user-{key}</name></author><published>{at.isoformat()}</published>"
        f"<updated>{at.isoformat()}</updated><content>{escape(text)}</content></entry>"
        for key, text, at in posts)
    return (f'<?xml version="1.0" encoding="utf-8"?><feed xmlns="http://www.w3.org/2005/Atom">'
            f"<title>Sweep forum</title><id>tag:sweep,2026:feed</id>"
            f"<updated>{now.isoformat()}</updated>{entries}</feed>").encode()
