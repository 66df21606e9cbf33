"""``type: slack``: a notice as a Block Kit message through a Slack incoming webhook.

Slack answers 200 "ok"; 429 (with Retry-After) and 5xx are retried; other 4xx
("invalid_payload", "no_service", "channel_is_archived", ...) need a person, so they are not.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any, Self

from pydantic import Field, SecretStr, model_validator

from monitor.model import Notice
from monitor.receivers import (
    BaseReceiver,
    Item,
    ReceiverOptions,
    describe,
    http_url_error,
    secret,
    summary,
)
from monitor.receivers.webhook import post_json

MAX_TEXT = 3000    # a section's text
MAX_HEADER = 150   # a header's plain text
MAX_BLOCKS = 50    # blocks in one message
MAX_POSTS = 20     # posts shown; the rest is "and N more" (keeps a message well under 50 blocks)
MAX_REASONS = 10   # reasons listed per post


class SlackOptions(ReceiverOptions):
    """Keys of a ``type: slack`` receiver."""

    required_secrets = frozenset({"webhook_url"})
    webhook_url: SecretStr | None = Field(None, description=(
        "the incoming webhook URL, normally `${SLACK_WEBHOOK_URL}` (its path is the "
        "credential); required unless `webhook_url_file` is set"))
    webhook_url_file: Path | None = Field(None, description=(
        "a file holding the URL instead, read at each send"))
    timeout: float = Field(10.0, gt=0, le=120, description="seconds per connect, read and write")
    max_posts: int = Field(5, ge=1, le=MAX_POSTS, description=(
        "posts shown in one message; the rest are counted"))

    @model_validator(mode="after")
    def _url(self) -> Self:
        http_url_error(self.webhook_url, "webhook_url")
        return self


class SlackReceiver(BaseReceiver):
    """Posts one message per notice to the channel the webhook belongs to."""

    Options = SlackOptions
    options: SlackOptions

    def send(self, notice: Notice) -> None:
        url = secret(self.options.webhook_url, self.options.webhook_url_file,
                     "Slack webhook URL")
        body = json.dumps(message(notice, self.options.max_posts), ensure_ascii=False)
        post_json(url, body.encode(), {}, self.options.timeout)


def message(notice: Notice, max_posts: int = 5) -> dict[str, Any]:
    """The webhook payload: a header, a context line, a section per post, and a ``text``
    fallback for notifications and old clients."""
    items = [describe(i) for i in notice.items]
    shown = items[:min(max_posts, MAX_BLOCKS - 3)]
    context = [f"Severity *{notice.severity}*", f"{len(items)} post" + "s" * (len(items) != 1),
               f"group `{escape(notice.group)}`"]
    if notice.case_id is not None:
        context.insert(1, f"case #{notice.case_id}")
    if notice.reminder:
        context.insert(0, "*Reminder*: this case is still open")
    blocks: list[dict[str, Any]] = [
        {"type": "header", "text": {"type": "plain_text", "text": _cut(summary(notice),
                                                                       MAX_HEADER)}},
        _context(" · ".join(context)),
    ]
    blocks += [{"type": "section", "text": {"type": "mrkdwn", "text": section(item)}}
               for item in shown]
    if len(items) > len(shown):
        blocks.append(_context(f"… and {len(items) - len(shown)} more flagged posts"))
    return {"text": _cut(escape(summary(notice)), MAX_TEXT), "blocks": blocks}


def section(item: Item) -> str:
    """One post in mrkdwn: every piece of post text escaped, so a post cannot @channel,
    link or format."""
    title = escape(item.title or "Untitled post")
    lines = [f"*{item.severity.upper()}* · " + (f"<{_link(item.url)}|{title}>" if item.url
                                               else title)]
    if item.quote:
        lines.append(f"> {escape(item.quote)}")
    lines.append(f"by {escape(item.author)} on {escape(item.source)} · {item.when}")
    lines += [f"• {escape(reason)}" for reason in item.reasons[:MAX_REASONS]]
    if len(item.reasons) > MAX_REASONS:
        lines.append(f"• … and {len(item.reasons) - MAX_REASONS} more reasons")
    return _cut("\n".join(lines), MAX_TEXT)


def escape(text: str) -> str:
    """Slack's three control characters as entities (its documented escaping)."""
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;")


def _link(url: str) -> str:
    return escape(url).replace("|", "%7C")


def _context(text: str) -> dict[str, Any]:
    return {"type": "context", "elements": [{"type": "mrkdwn", "text": _cut(text, MAX_TEXT)}]}


def _cut(text: str, limit: int) -> str:
    """``text`` within ``limit`` characters, never ending inside an ``&amp;`` entity."""
    if len(text) <= limit:
        return text
    return re.sub(r"&[a-z]*$", "", text[:limit - 1]) + "…"
