"""Receivers: where a notice goes (Slack, e-mail, any webhook), as Alertmanager's notifiers.

Each type is a class found through the ``monitor.receivers`` entry points, with a pydantic
``Options`` model, so a plugin receiver is configured and checked exactly like ours. The
helpers here are shared so the three read alike and treat secrets and HTTP failures alike.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC
from pathlib import Path
from typing import Any, ClassVar, Protocol, Self, runtime_checkable
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, SecretStr, ValidationError, model_validator
from pydantic_core import PydanticCustomError

from monitor.errors import ConfigError, DeliveryError
from monitor.model import QUEUE, FlaggedPost, Notice
from monitor.quoting import one_line, quote
from monitor.registry import receiver_class

RESERVED = (QUEUE,)  # routes to the outreach queue and never reaches a receiver


@runtime_checkable
class Receiver(Protocol):
    """What the router needs of a receiver type; ``send`` raises DeliveryError(retryable)."""

    Options: ClassVar[type[BaseModel]]
    name: str

    def __init__(self, name: str, options: Any) -> None: ...

    def send(self, notice: Notice) -> None: ...


class ReceiverOptions(BaseModel):
    """Base of our Options: an unknown key is a typo, and no value is echoed in an error
    (it may be a secret). A field ``x`` with a sibling ``x_file`` takes one or the other."""

    model_config = ConfigDict(extra="forbid", frozen=True, hide_input_in_errors=True)
    required_secrets: ClassVar[frozenset[str]] = frozenset()

    @model_validator(mode="after")
    def _one_source(self) -> Self:
        fields = type(self).model_fields
        for name in fields:
            if name.endswith("_file") and name[:-5] in fields:
                field, given = name[:-5], (getattr(self, name[:-5]), getattr(self, name))
                if None not in given:
                    raise PydanticCustomError("secret_both", "set {field} or {field}_file, not "
                                              "both", {"field": field})
                if given == (None, None) and field in self.required_secrets:
                    raise PydanticCustomError("secret_missing", "required (or {field}_file)",
                                              {"field": field})
        return self


class BaseReceiver:
    """Keeps name and options; its repr shows the name only, never an option."""

    Options: ClassVar[type[ReceiverOptions]]

    def __init__(self, name: str, options: Any) -> None:
        self.name, self.options = name, options

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.name!r})"


def build_receiver(name: str, spec: Mapping[str, Any], file: str | None = None) -> Receiver:
    """The receiver ``name`` of the config (``{"type": ..., **options}``); every mistake in
    its options becomes one ConfigError whose key names the option (receivers.NAME.KEY)."""
    prefix = f"receivers.{name}"
    if name in RESERVED:
        raise ConfigError(f"the name {name!r} is reserved (the outreach queue)", file, prefix)
    if not isinstance(spec, Mapping):
        raise ConfigError("must be a mapping (type: ..., and its options)", file, prefix)
    kind = spec.get("type")
    if not isinstance(kind, str) or not kind:
        raise ConfigError("required" if kind is None else "must be a string", file,
                          f"{prefix}.type")
    try:
        cls = receiver_class(kind)
    except ConfigError as error:
        raise ConfigError(error.message, file, f"{prefix}.type") from None
    try:
        options = cls.Options.model_validate({k: v for k, v in spec.items() if k != "type"})
    except ValidationError as error:
        raise ConfigError.combine([ConfigError(_message(e), file, _key(prefix, e))
                                   for e in error.errors()]) from None
    return cls(name, options)  # type: ignore[no-any-return]


def _message(error: Any) -> str:
    friendly = {"missing": "required", "extra_forbidden": "unknown key"}.get(error["type"])
    return friendly or str(error["msg"]).removeprefix("Value error, ")


def _key(prefix: str, error: Any) -> str:
    loc = tuple(error["loc"]) or ((error.get("ctx") or {}).get("field"),)
    for part in loc:
        if part is not None:
            prefix += f"[{part}]" if isinstance(part, int) else f".{part}"
    return prefix


def secret(value: SecretStr | str | None, file: Path | str | None, what: str) -> str:
    """A secret given inline (``${ENV}`` in the config) or in a file read now, so a rotated
    file is picked up without a restart; errors name the file, never the value."""
    if value is not None:
        text = value.get_secret_value() if isinstance(value, SecretStr) else value
    elif file is not None:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeError) as error:
            reason = getattr(error, "strerror", None) or type(error).__name__
            raise DeliveryError(f"cannot read the {what} from {file} ({reason})",
                                retryable=False) from None
    else:
        raise DeliveryError(f"no {what} configured", retryable=False)
    if not text.strip():
        raise DeliveryError(f"the {what} is empty" + (f" ({file})" if file else ""),
                            retryable=False)
    return text.strip()


def http_url_error(value: SecretStr | None, field: str) -> None:
    """Reject an inline URL that is not http(s) at config time, without showing it."""
    if value is not None:
        parts = urlsplit(value.get_secret_value().strip())
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise PydanticCustomError("url", "not an http(s) URL", {"field": field})


@dataclass(frozen=True, slots=True)
class Item:
    """One flagged post as every receiver shows it: the same fields, in the same words."""

    severity: str
    title: str | None
    quote: str
    url: str | None  # http(s) only: a post's link never becomes javascript: in a message
    author: str
    source: str
    when: str
    reasons: tuple[str, ...]


def describe(flagged: FlaggedPost) -> Item:
    """What a reader needs to judge a flagged post without opening it."""
    post, flag = flagged.post, flagged.flag
    url = post.url if urlsplit(post.url or "").scheme in ("http", "https") else None
    when = post.published_at
    when = when.replace(tzinfo=UTC) if when.tzinfo is None else when.astimezone(UTC)
    return Item(flag.severity, quote(one_line(post.title), 120) if post.title else None,
                quote(one_line(post.text)), url, one_line(post.author or "") or "someone",
                post.source, f"{when:%Y-%m-%d %H:%M} UTC",
                tuple(one_line(reason) for reason in flag.reasons))


def item_text(item: Item) -> str:
    """An item in plain text (e-mail, fallbacks)."""
    lines = [f"[{item.severity.upper()}] {item.title or 'Untitled post'}"]
    if item.quote:
        lines.append(f'  "{item.quote}"')
    lines.append(f"  by {item.author} on {item.source}, {item.when}")
    if item.url:
        lines.append(f"  {item.url}")
    lines += [f"  - {reason}" for reason in item.reasons]
    return "\n".join(lines)


def summary(notice: Notice) -> str:
    """One line for a subject or a header: ``[CRITICAL] 3 flagged posts in 'T' (case #12)``."""
    count = len(notice.items)
    title = next((i.post.title for i in notice.items if i.post.title), None)
    where = f"'{quote(one_line(title), 80)}'" if title else notice.group
    case = f" (case #{notice.case_id})" if notice.case_id is not None else ""
    again = "Reminder: " if notice.reminder else ""
    return (f"[{notice.severity.upper()}] {again}{count} flagged post{'s' * (count != 1)} "
            f"in {where}{case}")
