"""Log lines for people (text) and for log shippers (JSON lines), with known secrets masked.

Why our own formatter and not python-json-logger: the JSON line is thirty lines of stdlib, and
either way the masking below must see every string before it is written. A record's ``extra=``
fields (``source``, ``fetched``, ``new``, ``seconds`` ...) become fields of its JSON object, so
a shipper can count and filter without parsing the message. ``source_line`` is the one line a
source's collection gets, its level saying how it went.

Masking is a safety net, not the first defence (collectors redact URLs, receivers never echo
their options): every line is searched for the secrets we know of and each is written as
``***``. We know of the values of environment variables whose names say they are secret
(``*_TOKEN``, ``*_PASSWORD``, ``*_WEBHOOK_URL`` ...) from the start, and once a config is
loaded (``protect``) of its ``${ENV}`` values, ``SecretStr`` options, ``*_file`` contents and
the store's password.
"""

from __future__ import annotations

import json
import logging
import os
import re
import sys
import threading
from collections.abc import Iterable, Mapping
from contextlib import suppress
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any
from urllib.parse import quote

from monitor.quoting import for_terminal

if TYPE_CHECKING:
    from monitor.config import Config
    from monitor.pipeline import SourceReport

FORMATS = ("text", "json")
TEXT_FORMAT = "%(asctime)s %(levelname)s %(name)s: %(message)s"
MASK = "***"
MIN_SECRET = 6  # shorter values are too likely an ordinary word or number to mask everywhere
# A pass's line per source, as each is stored; a daemon job logs its own instead, flags and all
PASS_SOURCES = "monitor.pipeline.sources"

# chatty libraries: httpx logs every request's full URL at INFO (a token in a query string)
_QUIET = ("httpx", "httpcore")
_SCHEDULER = "apscheduler"  # two INFO lines per job run; its warnings (missed runs) stay
_SECRET_NAME = re.compile(r"(?:^|_)(?:API_?KEY|KEY|TOKEN|SECRET|PASS|PASSWORD|PASSWD|"
                          r"CREDENTIALS?|WEBHOOK|WEBHOOK_URL|DSN)(?:_|$)", re.IGNORECASE)
_ENV_REFERENCE = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)")
_RECORD_FIELDS = frozenset(vars(logging.makeLogRecord({}))) | {"message", "asctime", "taskName"}
_HANDLER_NAME = "monitor"


class _Secrets:
    """The values no log line may show. Only ever grows: a rotated secret's old value is
    still a secret."""

    def __init__(self) -> None:
        self._values: frozenset[str] = frozenset()
        self._pattern: re.Pattern[str] | None = None
        self._lock = threading.Lock()

    def add(self, values: Iterable[str]) -> None:
        found = set()
        for value in values:
            value = value.strip()
            if len(value) >= MIN_SECRET:
                found |= {value, quote(value, safe="")}  # as written, and inside a URL
        with self._lock:
            if found <= self._values:
                return
            self._values |= found
            longest_first = sorted(self._values, key=len, reverse=True)
            self._pattern = re.compile("|".join(map(re.escape, longest_first)))

    def mask(self, text: str) -> str:
        pattern = self._pattern  # swapped whole by add(): no lock needed to read it
        return pattern.sub(MASK, text) if pattern is not None and text else text


_SECRETS = _Secrets()


def mask(text: str) -> str:
    """``text`` with every known secret replaced by ``***``."""
    return _SECRETS.mask(text)


def hide(values: Iterable[str]) -> None:
    """Never log these values (from now on, in every format)."""
    _SECRETS.add(values)


def protect(config: Config) -> None:
    """Never log a secret this config holds (call after each load, e.g. on reload)."""
    _SECRETS.add(config_secrets(config))


class TextFormatter(logging.Formatter):
    """The classic line: ``2026-05-04 08:00:01,234 INFO monitor.daemon: feed: fetched 3 ...``."""

    def __init__(self) -> None:
        super().__init__(TEXT_FORMAT)

    def format(self, record: logging.LogRecord) -> str:
        return mask(for_terminal(super().format(record)))  # a server's error is quoted in it


class JsonFormatter(logging.Formatter):
    """One JSON object per record: ``time`` (ISO 8601, UTC), ``level``, ``logger``,
    ``message``, every ``extra=`` field, and ``exception`` (the traceback) when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        entry: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(
                timespec="milliseconds").replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
        }
        for key, value in vars(record).items():
            if key not in _RECORD_FIELDS and not key.startswith("_") and key not in entry:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            entry["exception"] = record.exc_text
        if record.stack_info:
            entry["stack"] = self.formatStack(record.stack_info)
        return json.dumps(_masked(entry), ensure_ascii=False)


def _masked(value: Any) -> Any:
    """A JSON-ready copy of ``value``: strings masked, anything unknown as its masked str."""
    if isinstance(value, str):
        return mask(value)
    if value is None or isinstance(value, bool | int | float):
        return value
    if isinstance(value, Mapping):
        return {mask(str(k)): _masked(v) for k, v in value.items()}
    if isinstance(value, list | tuple | set | frozenset):
        return [_masked(v) for v in value]
    return mask(str(value))


def setup(level: int, log_format: str = "text") -> None:
    """Log to stderr at ``level`` as text or JSON lines, quieting chatty libraries.

    As ``logging.basicConfig``: when something else already handles the root logger (a test
    runner, an application embedding us), its setup is kept and only ours is replaced.
    """
    if log_format not in FORMATS:
        raise ValueError(f"log format must be one of {', '.join(FORMATS)}")
    hide(env_secrets(os.environ))
    for name in _QUIET:
        logging.getLogger(name).setLevel(max(level, logging.WARNING))
    scheduler = level if level <= logging.DEBUG else max(level, logging.WARNING)
    logging.getLogger(_SCHEDULER).setLevel(scheduler)
    root = logging.getLogger()
    ours = [h for h in root.handlers if h.get_name() == _HANDLER_NAME]
    if len(ours) != len(root.handlers):
        return
    for handler in ours:
        root.removeHandler(handler)
    handler = logging.StreamHandler(sys.stderr)
    handler.set_name(_HANDLER_NAME)
    handler.setFormatter(JsonFormatter() if log_format == "json" else TextFormatter())
    root.addHandler(handler)
    root.setLevel(level)


def source_line(logger: logging.Logger, report: SourceReport, *, flagged: bool) -> None:
    """The one line of a source's collection, its numbers also as fields: INFO when it was
    read, WARNING when read with problems (a page that did not fully parse), ERROR naming the
    error when it failed. ``flagged``: whether ``report.flagged`` is known yet (a daemon job
    knows it; a pass storing its sources does not, and must not log a 0 it never counted)."""
    fields: dict[str, Any] = {
        "source": report.name, "fetched": report.fetched, "new": report.new,
        "edited": report.edited, "unchanged": report.unchanged,
        "seconds": round(report.seconds, 3), "error": report.error,
        "problems": list(report.problems)}
    counts = f"fetched {report.fetched}, new {report.new}, edited {report.edited}"
    if flagged:
        fields["flagged"] = report.flagged
        counts += f", flagged {report.flagged}"
    if report.error:
        logger.error("%s: FAILED after %.2fs: %s", report.name, report.seconds, report.error,
                     extra=fields)
    elif report.problems:
        logger.warning("%s: %s in %.2fs; %d problem%s: %s", report.name, counts,
                       report.seconds, len(report.problems), "s" * (len(report.problems) > 1),
                       "; ".join(report.problems), extra=fields)
    else:
        logger.info("%s: %s in %.2fs%s", report.name, counts, report.seconds,
                    " (unchanged)" if report.unchanged else "", extra=fields)


def env_secrets(environ: Mapping[str, str]) -> set[str]:
    """Values of environment variables named like secrets (``SLACK_WEBHOOK_URL``,
    ``SMTP_PASSWORD``, ``REDDIT_CLIENT_SECRET`` ...), whether or not a config uses them."""
    return {value for name, value in environ.items() if _SECRET_NAME.search(name)}


def config_secrets(config: Config) -> set[str]:
    """Every secret a loaded config holds: the values its files took from ``${ENV}``, its
    ``SecretStr`` options, the contents of its ``*_file`` options, the store's password."""
    found: set[str] = set()
    _walk(config.main, "", found)
    for source in config.sources:
        _walk(source.options, "", found)
    for receiver in config.receivers.values():
        _walk(getattr(receiver, "options", None), "", found)
    base = config.path.parent
    for file in {config.path, *(base / s.file for s in config.sources)}:
        try:
            text = Path(file).read_text(encoding="utf-8")
        except (OSError, UnicodeError):
            continue
        found |= {os.environ[n] for n in _ENV_REFERENCE.findall(text) if n in os.environ}
    password = _store_password(config.store_url)
    if password:
        found.add(password)
    return found


def _walk(value: Any, name: str, found: set[str]) -> None:
    from pydantic import BaseModel, SecretStr

    if isinstance(value, SecretStr):
        found.add(value.get_secret_value())
    elif isinstance(value, BaseModel):
        for field in type(value).model_fields:
            _walk(getattr(value, field), field, found)
    elif isinstance(value, Mapping):
        for key, item in value.items():
            _walk(item, str(key), found)
    elif isinstance(value, list | tuple):
        for item in value:
            _walk(item, name, found)
    elif name.endswith("_file") and isinstance(value, str | Path):
        with suppress(OSError, UnicodeError):  # what it holds now is what a log might show
            found.add(Path(value).read_text(encoding="utf-8"))


def _store_password(url: str) -> str | None:
    from sqlalchemy.engine import make_url
    from sqlalchemy.exc import ArgumentError

    try:
        return make_url(url).password
    except (ArgumentError, ValueError):
        return None
