"""The launch report by e-mail (``events[].report``): every morning while the launch is young,
to each recipient once a day, through the digest's e-mail receiver and send ledger."""

from __future__ import annotations

from datetime import date, datetime, timedelta
from email.message import EmailMessage
from email.utils import format_datetime

from monitor.backlash import report as reports
from monitor.backlash.events import WatchedEvent
from monitor.config import Config
from monitor.errors import MonitorError
from monitor.receivers.email import EmailOptions
from monitor.reports.mail import SendOutcome, send_report, sender_domain
from monitor.store import Store


def report_key(event: str, day: date) -> str:
    """One send per launch, per local day, per recipient: "launch:new-editor:2026-12-02"."""
    return f"launch:{reports.slug_of(event)}:{day.isoformat()}"


def young(event: WatchedEvent, now: datetime) -> bool:
    """Whether the launch report is still sent: from the launch until ``report.until`` after."""
    return event.mail is not None and event.launch <= now < event.launch + timedelta(
        seconds=event.mail.until)


def send_launch_report(config: Config, store: Store, event: WatchedEvent, now: datetime,
                       built: reports.Backlash | None = None) -> SendOutcome:
    """E-mail today's launch report to the event's ``report.to`` who have not had it today."""
    if event.mail is None:
        raise MonitorError(f"the event {event.name!r} has no report.to to send to")
    day = now.astimezone(config.timezone).date()

    def message(options: EmailOptions) -> EmailMessage:
        made = built or reports.build(store, event, config.timezone, now)
        return compose(made, options, now)

    return send_report(config, store, report_key(event.name, day), event.mail.to,
                       message, now)


def compose(report: reports.Backlash, options: EmailOptions, now: datetime) -> EmailMessage:
    """The Markdown as text/plain, the HTML with both charts as related inline images."""
    domain = sender_domain(options)
    stamp = report.made_at.strftime("%Y%m%d%H%M")
    cids = {name: f"{name}-{report.slug}-{stamp}@{domain}" for name in ("chart", "spark")}
    message = EmailMessage()
    message["Subject"] = f"{options.subject_prefix} Launch {report.event}: " \
                         f"{_headline(report)}".strip()
    message["From"] = options.sender
    message["Date"] = format_datetime(now)
    message["Auto-Submitted"] = "auto-generated"  # RFC 3834: no vacation replies to us
    message.set_content(reports.render(report, "backlash.md.j2"))
    message.add_alternative(reports.render(report, "backlash.html.j2",
                                           chart=f"cid:{cids['chart']}",
                                           spark=f"cid:{cids['spark']}"), subtype="html")
    html = message.get_payload()[1]
    for name, data in (("chart", report.chart_png), ("spark", report.spark_png)):
        html.add_related(data, "image", "png", cid=f"<{cids[name]}>",
                         filename=f"backlash-{report.slug}-{name}.png", disposition="inline")
    return message


def _headline(report: reports.Backlash) -> str:
    negative = report.figures["negative"]
    if not report.posts_after:
        return "no posts since the launch yet"
    text = f"{reports.percent(negative.after.value)} negative"
    if report.posts_before and negative.change.value is not None:
        text += f" ({reports.points_of(negative.change.value)})"
    return text
