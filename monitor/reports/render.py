"""The digest's formats, written into ``reports/``: HTML that stands alone (the chart inside
it), Markdown, CSV for a spreadsheet, and the chart's PNG. Post text is escaped in every format;
the backlash report renders through the same template environment.
"""

from __future__ import annotations

import base64
import csv
import io
import re
from datetime import datetime
from functools import cache
from pathlib import Path
from typing import Any

from jinja2 import Environment, PackageLoader, select_autoescape

from monitor.csvsafe import cell
from monitor.model import SHOWN
from monitor.quoting import one_line
from monitor.reports.digest import Digest

COLOURS = {"critical": "#a40e26", "high": "#d1242f", "medium": "#9a6700", "low": "#59636e"}
BACKGROUNDS = {"critical": "#ffebe9", "high": "#fff0ee", "medium": "#fff8c5", "low": "#f6f8fa"}
OTHERS_SHOWN = 30    # medium and low posts listed in the digest; the CSV has all of them
BEHIND_SHOWN = 10    # posts listed under a storm (each is in its own thread or line too)


def chart_uri(digest: Digest) -> str | None:
    """The chart as a ``data:`` URI: the HTML file stands alone, with no external asset."""
    if digest.chart is None:
        return None
    return "data:image/png;base64," + base64.b64encode(digest.chart).decode("ascii")


def render_html(digest: Digest, chart_src: str | None) -> str:
    """The HTML digest; ``chart_src`` is a ``data:`` URI for a file, ``cid:...`` for e-mail."""
    return environment().get_template("digest.html.j2").render(
        d=digest, chart_src=chart_src if digest.chart else None)


def render_markdown(digest: Digest, chart_file: str | None = None) -> str:
    """Markdown, readable as plain text too (the e-mail's text part has no ``chart_file``)."""
    return environment().get_template("digest.md.j2").render(d=digest, chart_file=chart_file)


CSV_COLUMNS = ("severity", "category", "praise", "source", "thread_title", "author",
               "author_url", "published_at", "flagged_at", "url", "text", "reasons", "rules",
               "tags", "case_id", "case_state", "case_assignee", "case_due_at", "case_overdue",
               *SHOWN)


def render_csv(digest: Digest) -> str:
    """Every flagged post of the day, one row each, in the digest's order. A cell a post
    wrote that starts like a formula (``=``, ``+``, ``-``, ``@``) is prefixed with ``'`` so a
    spreadsheet shows it instead of running it."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    writer.writerow(CSV_COLUMNS)
    for i in digest.items:
        case = i.case
        writer.writerow([
            i.severity, i.category or "", i.praise, cell(i.source),
            cell(i.thread_title or ""),
            cell(i.author or ""), i.author_url or "", i.published_at.isoformat(),
            i.flagged_at.isoformat(), cell(i.url or ""), cell(i.text),
            cell("; ".join(i.reasons)), "; ".join(i.rules), "; ".join(i.tags),
            case.id if case else "", case.state if case else "",
            (case.assignee or "") if case else "",
            case.due_at.isoformat() if case and case.due_at else "",
            case.overdue if case else "", *(i.scores[k] for k in SHOWN)])
    return out.getvalue()


def write(digest: Digest, folder: Path) -> list[Path]:
    """Write ``YYYY-MM-DD.html``, ``.md``, ``.csv`` (and ``.png``, the chart the Markdown
    shows) into ``folder``, each atomically; returns their paths, the HTML first."""
    folder.mkdir(parents=True, exist_ok=True)
    stem = digest.day.isoformat()
    chart = folder / f"{stem}.png"
    outputs: list[tuple[Path, bytes]] = [
        (folder / f"{stem}.html", render_html(digest, chart_uri(digest)).encode()),
        (folder / f"{stem}.md",
         render_markdown(digest, chart.name if digest.chart else None).encode()),
        (folder / f"{stem}.csv", render_csv(digest).encode("utf-8-sig")),  # Excel reads UTF-8
    ]
    if digest.chart is not None:
        outputs.append((chart, digest.chart))
    else:
        chart.unlink(missing_ok=True)  # an older chart of the same day would not match
    for path, data in outputs:
        tmp = path.with_name(path.name + ".tmp")
        tmp.write_bytes(data)
        tmp.replace(path)  # a reader never sees half a digest
    return [path for path, _ in outputs]




# --- templates -------------------------------------------------------------------------------

_MD_SPECIAL = re.compile(r"([\\`*_\[\]<>|~#])")
_MD_LINE_START = re.compile(r"^(\s*)([-+>]|\d+)([.)]?)")


def md_escape(value: Any) -> str:
    """Post text shown literally in Markdown: no links, emphasis, raw HTML, headings or lists
    from a post (parentheses and the like stay as they are, for plain-text readers). Every
    use is inline (a heading, a list item, a quote), so the text is made one line, without
    control or bidi characters: a newline in an author's name would end the list item and
    start a list, a rule or a heading of its own."""
    text = _MD_SPECIAL.sub(r"\\\1", one_line(str(value)))
    return _MD_LINE_START.sub(_unlisted, text)


def _unlisted(found: re.Match[str]) -> str:
    """A line that would start a list or a quote, escaped where CommonMark allows: before
    the marker (a dash), or before the dot of "2." (a backslash before a digit is shown)."""
    space, mark, dot = found.groups()
    if mark.isdigit():
        return space + mark + ("\\" + dot if dot else "")
    return space + "\\" + mark + dot


def md_url(value: str) -> str:
    """A URL inside ``<...>`` or ``(...)``: characters that would end it are percent-encoded."""
    return (value.replace(" ", "%20").replace("<", "%3C").replace(">", "%3E")
            .replace("(", "%28").replace(")", "%29"))


def _when(moment: datetime, digest: Digest) -> str:
    """``09:14`` on the digest's day, ``Sat 21 Nov 09:14`` on another, ``Thu 12 Nov 2015
    18:03`` in another year than the one the digest is made in: a weekday alone would
    pass an old post off as this year's."""
    if moment.date() == digest.day:
        return f"{moment:%H:%M}"
    year = f" {moment.year}" if moment.year != digest.made_at.year else ""
    return f"{moment:%a} {moment.day} {moment:%b}{year} {moment:%H:%M}"


@cache
def environment(package: str = "monitor.reports") -> Environment:
    """The templates of ``package`` (``.html.j2`` autoescaped) with the Markdown filters; the
    backlash report uses it too, so both reports escape and format the same way. Made once:
    the environment keeps its compiled templates, which a digest renders four times."""
    env = Environment(loader=PackageLoader(package, "templates"),
                      autoescape=select_autoescape(["html.j2"]), trim_blocks=True,
                      lstrip_blocks=True, keep_trailing_newline=True)
    env.filters.update(md=md_escape, md_url=md_url, when=_when)
    env.globals.update(shown=OTHERS_SHOWN, behind_shown=BEHIND_SHOWN, colours=COLOURS,
                       backgrounds=BACKGROUNDS)
    return env
