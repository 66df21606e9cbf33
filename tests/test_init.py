"""`monitor init`: a new project that `monitor check` passes and `monitor run` runs, offline."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
from click.testing import CliRunner, Result
from conftest import REPO, fixture_bytes
from loopback import LoopbackServer

from monitor.cli import main
from monitor.config import load

EXAMPLE = re.compile(r"^# (  )", re.MULTILINE)
"""A commented-out example line of a starter sources file ("#   - name: ..."), not prose."""


def monitor(*args: str) -> Result:
    return CliRunner().invoke(main, list(args))


def uncomment_examples(folder: Path) -> None:
    """What the starter files tell a person to do: delete the "# " before the examples."""
    for file in (folder / "sources").glob("*.yaml"):
        file.write_text(EXAMPLE.sub(r"\1", file.read_text()))


def test_init_then_check_then_run_offline(tmp_path: Path, server: LoopbackServer) -> None:
    """With --site, the site's feed is the first source: served here on 127.0.0.1, so the
    pass fetches it and nothing else (every other example is commented out)."""
    server.serve("/feed/", body=fixture_bytes("own/wordpress/comments-feed.xml"),
                 headers={"Content-Type": "application/rss+xml"})
    folder = tmp_path / "acme"
    made = monitor("init", str(folder), "--product", "Acme Cloud", "--site", server.base)
    assert made.exit_code == 0, made.output
    config = str(folder / "config.yaml")
    checked = monitor("check", "--config", config)
    assert checked.exit_code == 0, checked.output
    assert "sources: 1 in 1 file(s) (rss: 1)" in checked.stdout
    ran = monitor("run", "--config", config)
    assert ran.exit_code == 0, ran.output
    assert re.search(r"^acme-cloud-site +3 +3 ", ran.stdout, re.MULTILINE), ran.stdout
    assert [hit.path for hit in server.requests] == ["/feed/"]
    assert server.requests[0].headers["User-Agent"].endswith(f"(+{server.base})")
    assert sorted(p.name for p in (folder / "rules").iterdir()) == sorted(
        p.name for p in (REPO / "monitor" / "demo" / "rules").iterdir() if p.is_file())
    assert (folder / "reports").is_dir()


def test_init_here_says_what_to_run_next(tmp_path: Path,
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    made = monitor("init")
    assert made.exit_code == 0, made.output
    steps = made.stdout.split("Next:\n")[1].splitlines()  # no "cd": already there
    assert [line.split()[:2] for line in steps[:3]] == [
        ["monitor", "check"], ["monitor", "run"], ["monitor", "daemon"]]
    assert f"cd {tmp_path.resolve()} && " in steps[3] and "run --due-only" in steps[3]
    checked = monitor("check")  # the default --config: ./config.yaml
    assert checked.exit_code == 0, checked.output
    assert "sources: 0 in 0 file(s)" in checked.stdout  # without --site, examples only


def test_init_into_another_folder_says_cd(tmp_path: Path) -> None:
    made = monitor("init", str(tmp_path / "elsewhere"))
    assert made.exit_code == 0 and f"  cd {tmp_path / 'elsewhere'}\n" in made.stdout


def test_the_examples_pass_check_once_uncommented(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A product name full of YAML's special characters still leaves valid files."""
    monkeypatch.setenv("REDDIT_CLIENT_ID", "id")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "secret")
    product = 'Ünï: "Cloud" #1, [beta] & co'
    assert monitor("init", str(tmp_path), "--product", product).exit_code == 0
    uncomment_examples(tmp_path)
    config = load(tmp_path / "config.yaml")
    assert {s.name: s.kind for s in config.sources} == {
        "uni-cloud-1-beta-co-site": "rss", "uni-cloud-1-beta-co-blog-comments": "rss",
        "uni-cloud-1-beta-co-reddit": "reddit", "uni-cloud-1-beta-co-forum": "discourse",
        "uni-cloud-1-beta-co-hn": "hackernews"}
    assert config.source("uni-cloud-1-beta-co-hn").options.query == product
    assert config.source("uni-cloud-1-beta-co-reddit").options.search == [product]
    checked = monitor("check", "--config", str(tmp_path / "config.yaml"))
    assert checked.exit_code == 0, checked.output
    assert "(discourse: 1, hackernews: 1, reddit: 1, rss: 2)" in checked.stdout


def test_init_never_overwrites_without_force(tmp_path: Path) -> None:
    (tmp_path / "config.yaml").write_text("mine: true\n")
    (tmp_path / "rules").mkdir()
    (tmp_path / "rules" / "backlash.yaml").write_text("rules: []\n")
    refused = monitor("init", str(tmp_path))
    assert refused.exit_code == 2
    assert refused.stderr.splitlines() == [
        f"error: {tmp_path / 'config.yaml'}: already exists (pass --force to overwrite)",
        f"error: {tmp_path / 'rules' / 'backlash.yaml'}: already exists (pass --force to "
        "overwrite)"]
    assert (tmp_path / "config.yaml").read_text() == "mine: true\n"
    assert not (tmp_path / "sources").exists()  # all or nothing
    forced = monitor("init", str(tmp_path), "--force")
    assert forced.exit_code == 0, forced.output
    assert (tmp_path / "config.yaml").read_text().startswith("# feedback-monitor configuration")
    assert monitor("check", "--config", str(tmp_path / "config.yaml")).exit_code == 0


def test_init_says_what_it_cannot_write(tmp_path: Path) -> None:
    (tmp_path / "reports").write_text("a file where the folder goes\n")
    result = monitor("init", str(tmp_path))
    assert result.exit_code == 2
    assert result.stderr == f"error: {tmp_path / 'reports'}: cannot write (File exists)\n"
    assert not (tmp_path / "config.yaml").exists()


def test_a_missing_config_points_to_init(tmp_path: Path) -> None:
    result = monitor("check", "--config", str(tmp_path / "config.yaml"))
    assert result.exit_code == 2
    assert "or start a project with `monitor init`" in result.stderr


def test_init_refuses_a_site_that_is_no_web_address(tmp_path: Path) -> None:
    result = monitor("init", str(tmp_path), "--site", "acme.example")
    assert result.exit_code == 2
    assert "'acme.example' is not a web address (https://...)" in result.output
    assert not (tmp_path / "config.yaml").exists()


@pytest.mark.parametrize(("option", "value", "said"), [
    ("--site", "https://acme.example/p?q=1", "without ?query or #fragment"),  # was .../p?q=1/feed/
    ("--site", "https://acme.example/${X}", "read as an environment variable"),
    ("--product", "Ac${HOME}me", "read as an environment variable"),
])
def test_init_refuses_what_would_fail_its_own_check(tmp_path: Path, option: str, value: str,
                                                    said: str) -> None:
    result = monitor("init", str(tmp_path), option, value)
    assert result.exit_code == 2 and said in result.output
    assert not (tmp_path / "config.yaml").exists()


def test_a_long_product_name_still_makes_a_project_that_passes_check(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("REDDIT_CLIENT_ID", "id")
    monkeypatch.setenv("REDDIT_CLIENT_SECRET", "secret")
    assert monitor("init", str(tmp_path), "--product", "Acme Cloud " * 30,
                   "--site", "https://acme.example").exit_code == 0
    uncomment_examples(tmp_path)
    checked = monitor("check", "--config", str(tmp_path / "config.yaml"))
    assert checked.exit_code == 0, checked.output


def test_init_help() -> None:
    listed = monitor("--help")
    assert re.search(r"^  init +Start a project in FOLDER", listed.stdout, re.MULTILINE)
    helped = monitor("init", "--help")
    assert helped.exit_code == 0
    assert "Usage: main init [OPTIONS] [FOLDER]" in helped.stdout
    for words in ("--product NAME", "--site URL", "--force", "never overwritten",
                  "Nothing is fetched"):
        assert words in " ".join(helped.stdout.split()), words
