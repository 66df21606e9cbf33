"""``monitor import``: history from files (our exports, Reddit dumps, WordPress exports)."""

from __future__ import annotations

import sys
import time
from pathlib import Path
from typing import Any

import click

from monitor.cli.kit import config_option, errors_to_exit_codes, jobs_option, opened
from monitor.quoting import for_terminal

LOG_EVERY = 60.0
"""Seconds between progress lines in the log when stderr is not a terminal (cron, a pipe)."""


@click.command("import")
@click.argument("files", nargs=-1, required=True,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--source", metavar="NAME",
              help="The configured source the posts belong to (required for Reddit dumps and "
              "WordPress exports; for `monitor export` files it replaces each post's own).")
@click.option("--open-cases", is_flag=True,
              help="File flagged posts as cases in the queue (no notification is sent). "
              "Without it imported posts are scored and flagged, but open no case.")
@jobs_option
@config_option
@errors_to_exit_codes
def import_command(files: tuple[Path, ...], source: str | None, open_cases: bool,
                   jobs: int | None, config_path: Path) -> None:
    """Bring a community's history in: FILES of `monitor export` posts (JSON lines or CSV),
    Reddit archive dumps (NDJSON of submissions or comments, plain or .zst) or WordPress
    exports (WXR).

    Posts keep their own dates (so a launch has a "before"), are scored and flagged, but page
    nobody. Importing a file twice adds nothing; a post later collected live is the same post.
    """
    from monitor.errors import ConfigError
    from monitor.importer import import_files
    from monitor.imports import check_source_kind, file_kind
    from monitor.parallel import cores
    from monitor.runtime import Runtime, learned_models

    with opened(config_path) as (config, store):
        if source is not None and source not in {s.name for s in config.sources}:
            known = ", ".join(sorted(s.name for s in config.sources)) or "none"
            raise ConfigError(f"--source {source!r} is not a configured source (configured: "
                              f"{known}); add it to sources/ first, so that the posts "
                              "collected live later are the same posts")
        kinds = {s.name: s.kind for s in config.sources}
        for path in files:  # every file told (or refused) before any is imported
            kind = file_kind(path)
            if source is not None:
                check_source_kind(kind, path, source, kinds[source])
        runtime = Runtime.of(config, learned_models(store))
        with _progress() as show:
            report = import_files(list(files), store, runtime, source, open_cases,
                                  jobs or cores(), show)
    seconds = time.monotonic() - report.started
    click.echo(f"imported {report.added:,} new posts from {len(files)} file(s) in "
               f"{seconds:.0f} s ({report.read / max(seconds, 1e-9):,.0f} posts/s); "
               f"{report.known:,} already stored; {report.flagged:,} flagged; "
               f"{report.filed:,} filed in cases")
    if report.skipped:
        reasons = ", ".join(f"{why}: {n:,}" for why, n in report.skipped.most_common())
        click.echo(f"skipped {sum(report.skipped.values()):,} records ({reasons})")
        for example in report.examples:
            click.echo(f"  e.g. {for_terminal(example)}")  # quotes the file


class _progress:
    """A progress bar (posts/s, ETA) on a terminal; otherwise a log line a minute."""

    def __enter__(self) -> Any:
        self.bar: Any = None
        self.last = time.monotonic()
        if sys.stderr.isatty():
            from rich.console import Console
            from rich.progress import (
                BarColumn,
                Progress,
                TextColumn,
                TimeRemainingColumn,
            )

            self.bar = Progress(TextColumn("importing"), BarColumn(),
                                TextColumn("{task.percentage:>3.0f} %"),
                                TextColumn("{task.fields[posts]:,} posts, "
                                           "{task.fields[rate]:,.0f}/s"),
                                TimeRemainingColumn(), transient=True,
                                console=Console(stderr=True))
            self.task = self.bar.add_task("import", total=None, posts=0, rate=0.0)
            self.bar.start()
        return self.show

    def show(self, report: Any) -> None:
        if self.bar is not None:
            self.bar.update(self.task, total=report.total_bytes or None,
                            completed=report.done_bytes, posts=report.read, rate=report.rate)
        elif time.monotonic() - self.last >= LOG_EVERY:
            self.last = time.monotonic()
            share = report.done_bytes / report.total_bytes if report.total_bytes else 0.0
            spent = time.monotonic() - report.started
            eta = f", about {spent * (1 - share) / share / 60:.0f} min to go" if share else ""
            click.echo(f"import: {report.read:,} posts read ({report.rate:,.0f}/s), "
                       f"{100 * share:.0f} % of the files{eta}", err=True)

    def __exit__(self, *exc: object) -> None:
        if self.bar is not None:
            self.bar.stop()
