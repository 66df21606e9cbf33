"""Setting a project up: ``init`` writes a new one (a commented config, example sources, the
shipped rule packs), ``check`` validates one and lists every mistake at once.

The starter files live in ``monitor/starter/`` as YAML a person can read; ``@name@`` marks
what ``init`` fills in (the product's name, its site).
"""

from __future__ import annotations

import json
import re
import shlex
import sys
import unicodedata
from collections import Counter
from importlib.resources import files
from pathlib import Path
from urllib.parse import urlsplit

import click

from monitor.cli.kit import config_option, errors_to_exit_codes
from monitor.errors import ConfigError

STARTER = ("config.yaml", "sources/feeds.yaml", "sources/community.yaml")
"""The files of ``monitor/starter/`` that ``init`` fills in and writes, by their place."""
SLUG_CHARS = 40  # of the names made from the product's (source names are shown in tables)

_MARK = re.compile(r"@([a-z_]+)@")

NO_ALERTS = ("none set, so the monitor's own alerts (a broken source, a dead delivery, a "
             "stalled daemon) go nowhere but the log and `monitor status`: name the receivers "
             "that should tell an admin")


@click.command()
@config_option
@errors_to_exit_codes
def check(config_path: Path) -> None:
    """Validate the config, every source file and every rule file.

    Every mistake of every file is listed in one run, each with its file and key, and the
    exit code is 2; otherwise it says what it found and exits 0. Warnings (an old spelling,
    alerts that reach no one) never fail it.
    """
    from monitor import config as configuration

    config = configuration.load(config_path)
    kinds = Counter(s.kind for s in config.sources)
    source_files = {s.file for s in config.sources}
    rule_files = {r.file for r in config.rules.rules}
    click.echo(f"{config_path}: ok")
    click.echo(f"  sources: {len(config.sources)} in {len(source_files)} file(s) ("
               + ", ".join(f"{k}: {n}" for k, n in sorted(kinds.items())) + ")")
    click.echo(f"  rules:   {len(config.rules.rules)} in {len(rule_files)} file(s)")
    click.echo(f"  store:   {_hide_password(config.store_url)}")
    click.echo(f"  reports: {config.reports_dir}")
    if config.main.alerts.receivers:
        click.echo(f"  alerts:  {', '.join(config.main.alerts.receivers)}")
    else:  # on stdout, with the report: it is about this setup, not a fault in a file
        click.echo(f"warning: {config.path.name}: alerts.receivers: {NO_ALERTS}")
    for notice in config.notices:   # works, but is written the old way: say the new way
        click.echo(f"warning: {notice}", err=True)


def _hide_password(url: str) -> str:
    return re.sub(r"(://[^:/@]+:)[^@]*@", r"\1***@", url)


def _site(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    """--site must be a web address: it becomes a feed URL and the User-Agent's contact."""
    if value is None:
        return None
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise click.BadParameter(f"{value!r} is not a web address (https://...)")
    if parts.query or parts.fragment:  # URL/feed/ would land inside the query
        raise click.BadParameter(f"{value!r}: give the site's address without ?query or "
                                 "#fragment")
    return _no_variables(_ctx, _param, value).rstrip("/")


def _no_variables(_ctx: click.Context, _param: click.Parameter,
                  value: str | None) -> str | None:
    """The config reads ``${NAME}`` as an environment variable: one written by init would
    make the project fail its own check."""
    if value is not None and "${" in value:
        raise click.BadParameter(f"{value!r}: '${{' would be read as an environment "
                                 "variable in the config")
    return value


@click.command()
@click.argument("folder", type=click.Path(file_okay=False, path_type=Path), default=".")
@click.option("--product", metavar="NAME", callback=_no_variables,
              help="Your product's name, for the example searches, event and source names "
              "(default: the site's host name, else Example).")
@click.option("--site", metavar="URL", callback=_site,
              help="Your product's site: its feed (URL/feed/) becomes the first source, and "
              "URL the User-Agent's contact.")
@click.option("--force", is_flag=True, help="Overwrite files that already exist.")
@errors_to_exit_codes
def init(folder: Path, product: str | None, site: str | None, force: bool) -> None:
    """Start a project in FOLDER (default: here).

    Writes a commented config.yaml, sources/ with examples (the site's feed with --site;
    Reddit, Discourse and Hacker News ones commented out), rules/ with the shipped rule
    packs, and an empty reports/. An existing file is never overwritten without --force:
    init names it and exits 2, having written nothing. Nothing is fetched.
    """
    written = _starter(product, site)
    existing = [name for name in written if (folder / name).exists()]
    if existing and not force:
        raise ConfigError.combine([ConfigError("already exists (pass --force to overwrite)",
                                               str(folder / name)) for name in existing])
    try:
        (folder / "reports").mkdir(parents=True, exist_ok=True)  # first: fails before a file
        for name, content in written.items():
            (folder / name).parent.mkdir(parents=True, exist_ok=True)
            (folder / name).write_bytes(content)
    except OSError as error:  # a read-only folder, a file where a folder should be
        raise ConfigError(f"cannot write ({error.strerror})", error.filename) from None
    _next_steps(folder)


def _starter(product: str | None, site: str | None) -> dict[str, bytes]:
    """Each file ``init`` writes, by its place in the project: the starter files filled in,
    and the rule packs ``monitor demo`` uses (``monitor/demo/rules``)."""
    package = files("monitor")
    values = _values(product, site)
    written = {}
    for name in STARTER:
        text = package.joinpath("starter", *name.split("/")).read_text(encoding="utf-8")
        filled = _MARK.sub(lambda mark: values.get(mark[1], mark[0]), text)  # one pass
        written[name] = filled.encode("utf-8")
    for item in sorted(package.joinpath("demo", "rules").iterdir(), key=lambda i: i.name):
        if item.is_file() and not item.name.startswith("."):
            written[f"rules/{item.name}"] = item.read_bytes()
    return written


def _values(product: str | None, site: str | None) -> dict[str, str]:
    """What the starter files' ``@name@`` marks stand for; a name put inside YAML is quoted
    as JSON (which YAML reads), so any product name leaves the files valid."""
    from monitor import __version__

    host = (urlsplit(site).hostname or "") if site else ""
    name = " ".join((product or host.removeprefix("www.") or "Example").split())
    ascii_ = unicodedata.normalize("NFKD", name).encode("ascii", "ignore").decode().lower()
    slug = re.sub(r"[^a-z0-9]+", "-", ascii_)[:SLUG_CHARS].strip("-") or "product"
    subreddit = re.sub(r"[^a-z0-9_]", "", ascii_)[:21]
    contact = site or "https://example.com/contact"
    return {
        "product": name,
        "product_quoted": json.dumps(name, ensure_ascii=False),
        "new_editor": json.dumps(f"new {name} editor", ensure_ascii=False),
        "slug": slug,
        "subreddit": subreddit if len(subreddit) >= 2 else "example",
        "user_agent": json.dumps(f"feedback-monitor/{__version__} (+{contact})"),
        "site_feed": _site_feed(slug, site),
    }


def _site_feed(slug: str, site: str | None) -> str:
    """The site's feed as the first source; without --site the same entry, commented out."""
    url = f"{site or 'https://example.com'}/feed/"
    lines = [f"  - name: {slug}-site", "    kind: rss",
             f"    url: {json.dumps(url)}  # WordPress serves /feed/, Ghost /rss/, Hugo "
             "/index.xml: check yours",
             "    tags: [site]"]
    return "\n".join(lines if site else [f"# {line}" for line in lines])


def _next_steps(folder: Path) -> None:
    where = folder.resolve()
    monitor = Path(sys.executable).parent / "monitor"  # the venv's, for cron's bare PATH
    command = shlex.quote(str(monitor)) if monitor.exists() else "monitor"
    click.echo(f"Started a feedback-monitor project in {where}:\n"
               "  config.yaml             the settings, each one commented\n"
               "  sources/                what to watch: edit or uncomment the examples\n"
               "  rules/                  what to flag: the shipped rule packs\n"
               "  reports/                where digests are written\n\nNext:")
    if where != Path.cwd().resolve():
        click.echo(f"  cd {shlex.quote(str(folder))}")
    click.echo("  monitor check     validates it all and lists every mistake at once\n"
               "  monitor run       one pass: collect, score, flag; a line per source\n"
               "  monitor daemon    keeps watching, each source on its own interval; or from "
               "cron, every 5 minutes:\n"
               f"    */5 * * * *  cd {shlex.quote(str(where))} && {command} run --due-only "
               ">> monitor.log 2>&1")
