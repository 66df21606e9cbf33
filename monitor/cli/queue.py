"""``monitor queue``: the outreach team's commands (list, show, assign, respond, resolve...).

Who you are comes from ``--as``, else $MONITOR_USER, else the OS user name; it is the actor in
a case's history. Tables for people, their times in the configured ``timezone`` with its
abbreviation (CET, PDT: the hour a DST change repeats is told apart); ``--json`` for scripts,
stable keys and UTC ISO 8601 times, because that is data, not reading matter.
Exit codes: 0 done, 1 the command cannot be done (unknown case or person, illegal transition:
nothing changed), 2 bad usage or configuration.
"""

from __future__ import annotations

import dataclasses
import getpass
import json
import sys
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from datetime import UTC, datetime, tzinfo
from pathlib import Path
from typing import Any

import click

from monitor import cases
from monitor.cli.kit import checked_name, config_option, errors_to_exit_codes, opened
from monitor.model import SEVERITIES
from monitor.queue import (
    LIST_PAGE,
    STATES,
    Case,
    CaseDetail,
    Page,
    QueuePolicy,
    replies_for,
)
from monitor.quoting import for_terminal, one_line, quote


def _options(command: Callable[..., Any]) -> Callable[..., Any]:
    """--config and --as on every command, and errors turned into exit codes."""
    wrapper = config_option(errors_to_exit_codes(command))
    return click.option("--as", "actor", envvar="MONITOR_USER", metavar="NAME",
                        help="Who you are (default: $MONITOR_USER, else your OS user name).")(
        wrapper)


@dataclasses.dataclass
class _Session:
    store: Any
    policy: QueuePolicy
    config: Any
    me: str
    now: datetime


def _template(template: str | None, config: Any) -> str | None:
    """``respond --template``: one of the reply templates' ids, never a typo that would count
    in the won-back figures as a template of its own."""
    known = [r.id for r in config.replies()]
    if template is not None and template.strip() not in known:
        raise click.BadParameter(f"unknown reply template {template!r} (known: "
                                 f"{', '.join(known)})", param_hint="'--template'")
    return template


@contextmanager
def _session(config_path: Path, actor: str | None) -> Iterator[_Session]:
    me = checked_name(actor or getpass.getuser(), "'--as' / $MONITOR_USER")
    with opened(config_path) as (config, store):
        yield _Session(store, config.policy, config, me, datetime.now(UTC))


@click.group("queue")
def queue() -> None:
    """The outreach queue: one case per thread that needs a person. Nothing is ever posted
    for you: answer by hand, then record it here (respond, resolve)."""


@queue.command("list")
@click.option("--mine", is_flag=True, help="Only cases assigned to you.")
@click.option("--assignee", metavar="NAME", help="Only cases assigned to NAME.")
@click.option("--state", "states", multiple=True, type=click.Choice([*STATES, "all"]),
              help="Only cases in this state (repeatable; default: the open ones).")
@click.option("--overdue", is_flag=True, help="Only open cases past due with no response.")
@click.option("--severity", type=click.Choice(SEVERITIES))
@click.option("--limit", type=click.IntRange(min=0), metavar="N",
              help=f"Cases per page (default: {LIST_PAGE} in the table, all with --json or "
                   "--plain; 0: all).")
@click.option("--page", type=click.IntRange(min=1), default=1, show_default=True,
              help="Which page of --limit cases.")
@click.option("--plain", is_flag=True,
              help="One tab-separated line per case, no header (id, severity, state, "
                   "priority, assignee, due in UTC, posts, author, title): for scripts.")
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts (UTC times).")
@_options
def list_(mine: bool, assignee: str | None, states: tuple[str, ...], overdue: bool,
          severity: str | None, limit: int | None, page: int, plain: bool, as_json: bool,
          config_path: Path, actor: str | None) -> None:
    """Cases, most urgent first, a page at a time (the page's place goes to stderr, so a
    pipe gets the table alone). The table stays the table when piped: a script asks for
    --plain or --json, whose shape never depends on where the output goes."""
    if mine and assignee:
        raise click.UsageError("give --mine or --assignee, not both")
    if plain and as_json:
        raise click.UsageError("give --plain or --json, not both")
    size = (LIST_PAGE if not (plain or as_json) else 0) if limit is None else limit
    with _session(config_path, actor) as s:
        where = {"now": s.now, "assignee": s.me if mine else assignee,
                 "states": STATES if "all" in states else states or None,
                 "overdue": overdue, "severity": severity}
        shown = Page(page, size, s.store.count_listed(**where)) if size else None
        if (shown.offset >= shown.total) if shown is not None else page > 1:
            found = []  # past the end (with no --limit, all is page 1): no read
        else:
            found = s.store.list_cases(**where, limit=size or None,
                                       offset=shown.offset if shown else 0)
    if as_json:
        return _print_json([_plain(c) for c in found])
    if plain:
        for c in found:
            click.echo(_plain_line(c))
        return
    _list(found, s.now)
    if shown is not None and shown.total:
        click.echo(shown.footer(), err=True)


def _plain_line(case: Case) -> str:
    """One case as tab-separated fields, each on one line (tabs and newlines become spaces,
    nothing is ``-``, control characters are dropped): ``cut -f``, ``awk -F'\\t'`` and
    ``sort`` work on them."""
    due = case.due_at.astimezone(UTC).isoformat().replace("+00:00", "Z") \
        if case.due_at is not None else None
    fields = (case.id, case.severity, case.state, f"{case.priority:.3f}", case.assignee, due,
              case.posts, case.author, case.title or quote(case.text, 80) or case.url)
    return "\t".join(" ".join(for_terminal(str(f)).split()) or "-" if f is not None else "-"
                     for f in fields)


_COLUMNS = ("id", "severity", "state", "prio", "assignee", "due", "posts", "author", "title")
_DROPPED_FIRST = ("prio", "posts", "assignee", "due", "author")  # the least needed first
_TITLE_ROOM = 20


def _list(found: list[Case], now: datetime) -> None:
    """One line a case. A narrow terminal loses whole columns, the least needed first, so
    the title keeps at least ``_TITLE_ROOM`` characters; id, severity and state are never cut
    (`show` has the rest)."""
    console = _console()
    if not found:
        console.print("no cases")
        return
    from rich.table import Table
    from rich.text import Text

    rows = [dict(zip(_COLUMNS, (str(c.id), c.severity, c.state, f"{c.priority:.1f}",
                                c.assignee or "-", _due(c, now), str(c.posts),
                                one_line(c.author or "-")[:20],
                                for_terminal(c.title or quote(c.text, 80) or c.url)),
                     strict=True)) for c in found]
    widths = {n: max(len(n), *(len(r[n]) for r in rows)) for n in _COLUMNS}
    shown = list(_COLUMNS)

    def used() -> int:  # the columns but the title, and two spaces between columns
        return sum(widths[n] for n in shown if n != "title") + 2 * (len(shown) - 1)

    for name in _DROPPED_FIRST:
        if console.width - used() >= _TITLE_ROOM:
            break
        shown.remove(name)
    room = max(_TITLE_ROOM, console.width - used())
    table = Table(box=None, header_style="bold", pad_edge=False)
    for name in shown:
        table.add_column(name, justify="right" if name in ("id", "prio", "posts") else "left",
                         no_wrap=True)
    for row in rows:  # as Text: a post's "[/b]" or "[link=...]" is no markup of rich's
        table.add_row(*(Text(quote(row[n], room) if n == "title" else row[n])
                        for n in shown))
    # never squeezed: print(width=) is capped at the terminal's, so the console is widened
    console.width = max(console.width, used() + 2 + room)
    console.print(table)


@queue.command()
@click.argument("case_id", type=int)
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts (UTC times).")
@_options
def show(case_id: int, as_json: bool, config_path: Path, actor: str | None) -> None:
    """One case: its posts and why they were flagged, its history, notes and fitting replies."""
    from monitor.backlash.events import case_launches

    with _session(config_path, actor) as s:
        detail = s.store.get_case(case_id, s.now)
        launches = case_launches(s.config, detail.case.event, detail.case.opened_at,
                                 detail.posts)
        replies = replies_for(detail, s.config.replies(), next(iter(launches), None))
        outcome = s.store.outcome(case_id)  # did the answer win them back (monitor.followup)
    if as_json:
        return _print_json({"case": _plain(detail.case), "posts": list(detail.posts),
                            "events": list(detail.events), "notes": list(detail.notes),
                            "replies": replies, "outcome": outcome})
    _show(detail, replies, s.now, s.config.timezone)
    if outcome is not None:
        _outcome(outcome, s.config.timezone)


def _outcome(outcome: dict[str, Any], zone: tzinfo) -> None:
    """An answered case's follow-up: its outcome, the means before and after, and why."""
    out, evidence = _console(), outcome["evidence"]
    out.print(f"\nDid the answer win them back? {outcome['outcome']}", style="bold",
              markup=False)
    out.print(f"  followed from {_time(outcome['responded_at'], zone)} until "
              f"{_time(outcome['window_ends_at'], zone)}", markup=False)
    for when in ("before", "after"):
        seen = evidence[when]
        means = (f": mean compound {seen['compound']:+.2f}, complaint {seen['complaint']:.2f}"
                 if seen["compound"] is not None else "")
        out.print(f"  {when} the reply: {seen['posts']} post(s){means}", markup=False)
    for why in evidence.get("why", []):
        out.print(f"  why: {why}", markup=False)
    if evidence.get("shown_by"):
        out.print("  shown by posts " + ", ".join(f"#{n}" for n in evidence["shown_by"]),
                  markup=False)


def _show(detail: CaseDetail, replies: list[dict[str, str]], now: datetime,
          zone: tzinfo = UTC) -> None:
    c, console = detail.case, _console()

    def say(text: str, **style: Any) -> None:  # posts, notes and replies come from outside
        console.print(for_terminal(text), markup=False, **style)

    line = (f"case {c.id}  {c.severity}  {c.state}"
            + (f" ({c.assignee})" if c.assignee else "") + f"  priority {c.priority:.1f}")
    say(line, style="bold")
    due = _due(c, now)
    due = f"{_time(c.due_at, zone)} ({due})" if due != "-" else due
    say(f"opened {_time(c.opened_at, zone)}  due {due}  group {c.group_key}"
        + (f"\ndismissed: {c.reason}" if c.state == "dismissed" else ""))
    who = one_line(c.author or "") or ("the storm" if c.storm else "someone")  # its worst
    say(f"{one_line(c.title or '') or 'Untitled thread'}\nshown by #{c.post_id}, {who} on "
        f"{c.source}"
        + (f": {quote(c.text, 200)}" if c.text else ""))
    say("\nPosts", style="bold")
    for p in detail.posts:
        say(f"  #{p['post_id']} {one_line(p['author'] or '') or 'someone'} on {p['source']}, "
            f"{_time(p['published_at'], zone)}  {p['severity'] or '-'} "
            f"{p['category'] or ''}\n  {p['url']}")
        said = (p["title"] + "\n" if p["title"] else "") + p["text"][:600]
        say("\n".join("    > " + q for q in said.splitlines()))
        for reason in p["reasons"] or ():
            say(f"    why: {reason}")
    say("\nHistory", style="bold")
    for e in detail.events:
        what = e["detail"] or {}
        extra = ", ".join(f"{k}={v}" for k, v in what.items() if k != "text")
        say(f"  {_time(e['at'], zone)}  {e['actor'] or 'monitor'}  {e['action']}"
            + (f"  {extra}" if extra else "")
            + (f": {what['text']}" if "text" in what else ""))
    say("\nReply templates (adapt them, post by hand; nothing is posted for you)", style="bold")
    for r in replies:
        say(f"  [{r['id']}] {r['title']}")
        say("\n".join("    " + t for t in r["text"].splitlines()))


def _command(action: str, help_text: str, person: bool = False) -> None:
    """Define one transition command: ``monitor queue ACTION ID [PERSON]``."""
    def run(case_id: int, config_path: Path, actor: str | None,
            person_name: str | None = None, reason: str | None = None,
            text: str | None = None, template: str | None = None) -> None:
        with _session(config_path, actor) as s:
            if action == "assign":
                case = cases.assign(s.store, case_id,
                                    checked_name(person_name or "", "'PERSON'"),
                                    actor=s.me, now=s.now, policy=s.policy)
            elif action == "claim":
                case = cases.claim(s.store, case_id, actor=s.me, now=s.now, policy=s.policy)
            elif action == "dismiss":
                case = cases.dismiss(s.store, case_id, reason or "", actor=s.me, now=s.now)
            elif action == "reopen":
                case = cases.reopen(s.store, case_id, actor=s.me, now=s.now, policy=s.policy)
            elif action == "respond":
                case = cases.respond(s.store, case_id, actor=s.me, now=s.now, text=text,
                                     template=_template(template, s.config))
            else:
                case = getattr(cases, action)(s.store, case_id, actor=s.me, now=s.now)
        click.echo(f"case {case.id}: {case.state}"
                   + (f", assigned to {case.assignee}" if case.assignee else ""))

    command = _options(run)
    if action == "dismiss":
        command = click.option("--reason", required=True, help="Why no outreach is needed "
                               "(spam, a duplicate, nothing to answer).")(command)
    if action == "respond":
        command = click.option("--text", help="What you wrote (kept in the case's history).")(
            click.option("--template", metavar="ID", help="The reply template it came from "
                         "(`queue show` lists them): the won-back figures count by "
                         "template.")(command))
    if person:
        command = click.argument("person_name", metavar="PERSON")(command)
    queue.command(action, help=help_text)(click.argument("case_id", type=int)(command))


_command("assign", "Give case ID to PERSON (a team member who is not away).", person=True)
_command("claim", "Take case ID yourself.")
_command("respond", "Record that someone answered the author (posted by hand).")
_command("resolve", "Close case ID: the conversation is done.")
_command("dismiss", "Close case ID without outreach; --reason says why.")
_command("reopen", "Open a resolved or dismissed case again.")


@queue.command()
@click.argument("case_id", type=int)
@click.argument("text")
@_options
def note(case_id: int, text: str, config_path: Path, actor: str | None) -> None:
    """Add a note for the team to case ID."""
    with _session(config_path, actor) as s:
        cases.note(s.store, case_id, text, actor=s.me, now=s.now)
    click.echo(f"case {case_id}: note added")


@queue.command()
@click.argument("case_id", type=int)
@_options
def confirm(case_id: int, config_path: Path, actor: str | None) -> None:
    """Agree with the monitor: case ID's posts are complaints (and angry where it said so).
    A label for `monitor learn`; the case's state does not change."""
    with _session(config_path, actor) as s:
        cases.confirm(s.store, case_id, actor=s.me, now=s.now)
    click.echo(f"case {case_id}: confirmed")


@queue.command()
@click.argument("case_id", type=int)
@click.argument("level", type=click.Choice(SEVERITIES))
@_options
def severity(case_id: int, level: str, config_path: Path, actor: str | None) -> None:
    """Set case ID's severity by hand (raised, or lowered to low: a label for `monitor
    learn`)."""
    with _session(config_path, actor) as s:
        case = cases.set_severity(s.store, case_id, level, actor=s.me, now=s.now,
                                  policy=s.policy)
    click.echo(f"case {case.id}: {case.severity}")


@queue.command()
@click.argument("url")
@click.option("--complaint/--no-complaint", default=None,
              help="The post reports a problem, or does not (default, with neither "
                   "option: --complaint).")
@click.option("--angry/--not-angry", default=None, help="The writer is angry, or is not.")
@_options
def flag(url: str, complaint: bool | None, angry: bool | None, config_path: Path,
         actor: str | None) -> None:
    """Say what the stored post at URL is (one the monitor missed or got wrong): a label for
    `monitor learn`. It is not filed into the queue."""
    values = {"complaint": complaint} if complaint is not None else {}
    if angry is not None:
        values["anger"] = angry
    values = values or {"complaint": True}
    with _session(config_path, actor) as s:
        post_id, case_id = cases.flag_post(s.store, url, values, actor=s.me, now=s.now)
    said = ", ".join(f"{k} {'yes' if v else 'no'}" for k, v in values.items())
    click.echo(f"post #{post_id}: {said}" + (f" (case {case_id})" if case_id else ""))


def _presence(name: str, away: bool, about: str) -> None:
    """``queue away`` and ``queue back``: the same command, either way."""
    @queue.command(name, help=about)
    @click.argument("person")
    @_options
    def command(person: str, config_path: Path, actor: str | None) -> None:
        with _session(config_path, actor) as s:
            cases.set_away(s.store, checked_name(person, "'PERSON'"), away, now=s.now,
                           policy=s.policy)
        click.echo(f"{person} is {name}")


_presence("away", True, "PERSON gets no new cases until `back` (their open cases stay theirs).")
_presence("back", False, "PERSON gets new cases again.")


@queue.command()
@click.option("--json", "as_json", is_flag=True, help="JSON for scripts (seconds).")
@click.option("--outcomes", is_flag=True, help="Only the won-back figures (with --json: "
              "an object of them, the severity list's shape left as it was).")
@_options
def stats(as_json: bool, outcomes: bool, config_path: Path, actor: str | None) -> None:
    """Open and overdue cases, and time to first response and to resolution (median, p90),
    by severity; then whether our answers of the last 7 days won their authors back, by who
    answered first, severity, reply template and launch."""
    from monitor import followup

    with _session(config_path, actor) as s:
        rows = s.store.queue_stats(s.now)
        week, figures = followup.last_week(s.store, s.now)
    if as_json:
        if outcomes:
            return _print_json({"answered_last_7_days": dataclasses.asdict(week),
                                **{group: [dataclasses.asdict(f) for f in found]
                                   for group, found in figures.items()}})
        return _print_json([dataclasses.asdict(r) for r in rows])
    from rich.table import Table
    from rich.text import Text

    console = _console()
    if not outcomes:
        table = Table(box=None, header_style="bold", pad_edge=False)
        for name in ("severity", "open", "overdue", "reply p50", "reply p90", "resolve p50",
                     "resolve p90"):  # to the first response, and to resolution
            table.add_column(name, justify="left" if name == "severity" else "right")
        for r in rows:
            table.add_row(r.severity, str(r.open), str(r.overdue), *(
                _span(v) for v in (r.first_response_median, r.first_response_p90,
                                   r.resolution_median, r.resolution_p90)))
        console.print(table)
    console.print("\nDid the answer win them back? " + followup.answered_line(
        week, "last 7 days"), style="bold", markup=False)
    for group, found in figures.items():
        if not found:
            continue
        table = Table(box=None, header_style="bold", pad_edge=False)
        key_width = max(len(group), *(len(f.key) for f in found))  # a pipe's 80 columns
        for name in (group, "answered", "won back", "still unhappy", "quiet", "too early",
                     "won back %", "reply p50", "resolve p50"):  # cut no header, no key
            table.add_column(name, justify="left" if name == group else "right",
                             no_wrap=True, min_width=key_width if name == group else len(name))
        for f in found:
            table.add_row(Text(for_terminal(f.key)), str(f.answered), str(f.won_back),
                          str(f.still_unhappy), str(f.gone_quiet), str(f.too_early),
                          "-" if f.rate is None else f"{100 * f.rate:.0f}%",
                          _span(f.first_response_median), _span(f.resolution_median))
        console.print(table)


# --- output helpers --------------------------------------------------------------------------

def _console() -> Any:
    from rich.console import Console

    return Console(highlight=False, soft_wrap=True, no_color=not sys.stdout.isatty())


def _plain(value: Any) -> Any:
    return dataclasses.asdict(value) if dataclasses.is_dataclass(value) else value


def _print_json(value: Any) -> None:
    def default(item: Any) -> Any:
        if isinstance(item, datetime):
            return item.astimezone(UTC).isoformat()
        raise TypeError(type(item).__name__)

    click.echo(json.dumps(value, default=default, indent=2, sort_keys=True))


def _time(value: datetime | None, zone: tzinfo = UTC) -> str:
    """``2026-10-25 02:30 CEST``: local, and which side of a DST change it is on."""
    return value.astimezone(zone).strftime("%Y-%m-%d %H:%M %Z") if value else "-"


def _span(seconds: float | None) -> str:
    """90061 -> "1d 1h"; a short, readable duration."""
    if seconds is None:
        return "-"
    seconds = int(abs(seconds))
    parts = [(seconds // 86400, "d"), (seconds % 86400 // 3600, "h"),
             (seconds % 3600 // 60, "m")]
    shown = [f"{n}{unit}" for n, unit in parts if n][:2]
    return " ".join(shown) or f"{seconds}s"


def _due(case: Any, now: datetime) -> str:
    if case.due_at is None or case.state not in ("new", "assigned"):
        return "-"
    left = (case.due_at - now).total_seconds()
    return f"OVERDUE {_span(left)}" if case.overdue else f"in {_span(left)}"
