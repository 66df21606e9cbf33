"""Rule authoring: ``score`` (why would this be flagged?), ``rules test`` (precision and recall
on labelled samples), and ``rescore`` (stored posts again, after a rule was fixed)."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Any

import click

from monitor.cli.kit import (
    config_option,
    errors_to_exit_codes,
    jobs_option,
    opened,
    parse_since,
)


@click.command()
@click.argument("text", required=False)
@click.option("--title", help="A title to score with TEXT.")
@jobs_option
@config_option
@errors_to_exit_codes
def score(text: str | None, title: str | None, jobs: int | None, config_path: Path) -> None:
    """Why would this be flagged? Scores TEXT, or JSON lines on stdin.

    Each input line is {"text": ..., "title": ...} (optionally author, source, kind, tags, reach,
    vip); each output line, in input order, has the scores, the signals, flagged, severity, the
    matched rules and the reasons. A bad input line gives a line with an "error" key. Lines
    are scored in batches of what has arrived, so each line typed is answered at once.
    """
    import json as json_

    from monitor import scorestream

    rules, scorer, vips = _rule_tools(config_path)
    lines = (json_.dumps({"text": text, "title": title}),) if text is not None else sys.stdin
    if jobs is None:
        from monitor.parallel import cores

        jobs = cores()
    scorestream.write_scores(lines, sys.stdout, rules, scorer, vips, jobs=jobs)


@click.group("rules")
def rules_group() -> None:
    """Help for rule authors."""


@rules_group.command("test")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@config_option
@click.option("--worst", default=5, show_default=True, type=click.IntRange(0),
              help="How many misses to show per label and kind of mistake.")
@errors_to_exit_codes
def rules_test(file: Path, config_path: Path, worst: int) -> None:
    """Run the rules over labelled JSON lines ({"text", "label"}): precision, recall, F1.

    A post is predicted L when a matching rule has L as its category or one of its tags;
    the labels "none" and "neutral" mean the post should not be flagged at all.
    """
    from monitor import ruletest

    rules, scorer, vips = _rule_tools(config_path)
    samples = ruletest.read_labelled(file)
    click.echo(ruletest.render(ruletest.run_test(samples, rules, scorer, vips,
                                                 str(file), worst)))


def _rule_tools(config_path: Path) -> tuple[Any, Any, Any]:
    """The rules, scorer and VIP list exactly as a pass would use them (the sources' own
    kind and tags come with each sample, so the sources are not read)."""
    from monitor import config as configuration
    from monitor.runtime import Runtime

    judge = Runtime.of(configuration.load(config_path, scoring_only=True))
    return judge.rules, judge.scorer, judge.vips


@click.command()
@config_option
@click.option("--since", help="Only posts first seen from then on: a date, a time or an age "
              "(7d). Default: every stored post.")
@jobs_option
@errors_to_exit_codes
def rescore(config_path: Path, since: str | None, jobs: int | None) -> None:
    """Re-apply the current scorer and rules to stored posts (after a rule was fixed).

    Flags follow the rules as they are now; a newly flagged post opens its one case; a post
    no rule matches any more loses its flag, but a case already opened for it stays.
    """
    from monitor.parallel import cores
    from monitor.pipeline import score_pending
    from monitor.runtime import Runtime, learned_models

    with opened(config_path) as (config, store):
        start = parse_since(since, config.timezone) if since else None
        scored, flagged = score_pending(store, Runtime.of(config, learned_models(store)),
                                        rescore=True, since=start, jobs=jobs or cores())
    click.echo(f"rescored {scored} posts; {sum(flagged.values())} newly flagged")
