"""Load and check ``config.yaml``, ``sources/*.yaml`` and ``rules/*.yaml``.

Every mistake becomes a ConfigError that reads ``file: key.path: message``; all of a load's
mistakes are gathered so ``monitor check`` can show them at once.
"""

from __future__ import annotations

import datetime as datetime_
import functools
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any
from zoneinfo import ZoneInfo

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    IPvAnyNetwork,
    ValidationError,
    field_validator,
)

from monitor.errors import ConfigError
from monitor.model import EARLIEST, LATEST, QUEUE, STORM_SOURCE, SYSTEM_SOURCE
from monitor.queue import Assignment, QueuePolicy, Reply, SlaTimes, Team, load_replies
from monitor.receivers import Receiver, build_receiver
from monitor.registry import collector_class
from monitor.route import RouteTree, RoutingSpec
from monitor.rules import RuleSet, load_rules
from monitor.scoring.lexicons import load_word_file
from monitor.units import (
    DAY,
    HOUR,
    LONGEST,
    Duration,
    Interval,
    Pause,
    Size,
    Span,
    Timeout,
    TimeZoneName,
    between,
    spoken,
)
from monitor.yamlfile import MAX_FILE_BYTES, read_yaml, shown_path

PROFANITY_FILE = "profanity.txt"
"""In the rules folder: the user's own swear words and insults (``-word`` removes one)."""
REPLIES_FILE = "replies.yaml"
"""In the rules folder: the outreach queue's reply templates."""

MAX_NAME = 100
"""The longest source name."""

STORE_DRIVERS = ("sqlite", "sqlite+pysqlite", "postgresql", "postgresql+psycopg")
"""The databases the store runs on (psycopg is PostgreSQL's installed driver)."""

_ENV = re.compile(r"\$\{([A-Za-z_][A-Za-z0-9_]*)(?::-([^}]*))?\}")


Deadline = Annotated[Duration, between(0, DAY, above=True)]
"""How long a source, or a whole pass, may take: more than 0 (and finite), at most a day."""

Retention = Annotated[Duration, between(7 * DAY, LONGEST)]
"""How long a post's text and author are kept (``store.retention``, ``monitor prune
--older-than``): at least a week, so the week's complaint themes still read their posts."""


class HttpSettings(BaseModel):
    """How every collector talks HTTP."""

    model_config = ConfigDict(extra="forbid")
    user_agent: str = "feedback-monitor/0.1 (+https://github.com/feedback-monitor)"
    connect_timeout: Timeout = 5.0
    read_timeout: Timeout = 20.0
    total_timeout: Timeout = 60.0
    max_bytes: Size = 10 * 1024 * 1024
    retries: int = Field(2, ge=0, le=10)
    backoff: Pause = 1.0
    max_retry_after: Pause = 60.0
    block_private: bool = False
    source_deadline: Deadline = 300.0
    pass_deadline: Deadline = 600.0


class LaunchMail(BaseModel):
    """A launch report e-mailed every morning while the launch is young (``events[].report``),
    through the digest's e-mail receiver (``digest.via``)."""

    model_config = ConfigDict(extra="forbid")
    at: str = Field(pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                    description="HH:MM in the configured time zone")
    to: list[str] = Field(min_length=1)
    until: Span = Field(30 * DAY, description="how long after the launch it is sent")


class Event(BaseModel):
    """A launch to watch (a redesign, a new editor): its keywords count as change talk."""

    model_config = ConfigDict(extra="forbid")
    name: str = Field(min_length=1)
    date: datetime_.datetime  # a date alone means its midnight in the configured time zone
    keywords: list[str] = Field(min_length=1)
    sources: list[str] = []
    tags: list[str] = []
    days: int = Field(14, ge=1, le=365, description="days compared before and after the date")
    report: LaunchMail | None = None

    @field_validator("date", mode="before")
    @classmethod
    def _midnight(cls, value: Any) -> Any:
        if isinstance(value, datetime_.date) and not isinstance(value, datetime_.datetime):
            return datetime_.datetime.combine(value, datetime_.time())
        return value

    @field_validator("date")
    @classmethod
    def _in_range(cls, value: datetime_.datetime) -> datetime_.datetime:
        if not EARLIEST.year <= value.year < LATEST.year:
            raise ValueError(f"must be a year from {EARLIEST.year} to {LATEST.year - 1}")
        return value


class FollowupSettings(BaseModel):
    """How long after a reply the monitor follows its author's posts to tell whether the
    answer won them back (``monitor.followup``)."""

    model_config = ConfigDict(extra="forbid")
    window: Span = Field(30 * DAY, description="how long an author is followed after a reply")


class DigestSettings(BaseModel):
    """The daily digest: written to ``reports/`` always; e-mailed to ``to`` (through the SMTP
    settings of the e-mail receiver ``via``) when set; made by the daemon at ``at``."""

    model_config = ConfigDict(extra="forbid")
    at: str | None = Field(None, pattern=r"^([01]\d|2[0-3]):[0-5]\d$",
                           description="HH:MM in the configured time zone")
    to: list[str] = []
    via: str | None = Field(None, description="an e-mail receiver; default: the only one")
    praise: int = Field(5, ge=0, le=50, description="praise posts shown at most")
    catch_up: bool = Field(True, description="the daemon makes a digest missed while it was "
                           "down as soon as it starts")


class MetricsSettings(BaseModel):
    """The daemon's Prometheus endpoint: off unless ``port`` is set; loopback by default."""

    model_config = ConfigDict(extra="forbid")
    port: int | None = Field(None, ge=1, le=65535)
    host: str = "127.0.0.1"


class WebSettings(BaseModel):
    """The web inbox (``monitor web``, and a job of the daemon when this section is present).
    Loopback by default: put it behind a reverse proxy with TLS to open it to a team."""

    model_config = ConfigDict(extra="forbid")
    host: str = "127.0.0.1"
    port: int = Field(8080, ge=1, le=65535)
    session_idle: Annotated[Duration, between(60, 7 * DAY)] = Field(
        8 * HOUR, description="a session unused this long ends")
    session_max: Annotated[Duration, between(60, 90 * DAY)] = Field(
        7 * DAY, description="a session ends this long after its login, used or not")
    trusted_proxies: list[IPvAnyNetwork] = Field(
        [], description="addresses whose Remote-User header and X-Forwarded-* are believed")
    remote_user_header: str = Field("Remote-User", min_length=1, max_length=100)


class DeliverySettings(BaseModel):
    """How the outbox retries: ``backoff`` before the second attempt, doubling (at most 6 h);
    dead after ``max_attempts``."""

    model_config = ConfigDict(extra="forbid")
    max_attempts: int = Field(8, ge=1, le=100)
    backoff: Annotated[Duration, between(0, 6 * HOUR)] = 60.0


class AlertSettings(BaseModel):
    """The monitor's alerts about itself (category ``system``): routed like any flag, by
    default to ``receivers`` (the admins'), never into the outreach queue."""

    model_config = ConfigDict(extra="forbid")
    receivers: list[str] = []
    after_failures: int = Field(3, ge=1, le=100, description="failures in a row that make "
                                "a source broken")
    stalled_after: Span | None = Field(None, description="no pass for this long is "
                                           "a stall; default: twice the shortest interval")


def _known_database(url: str | None) -> str | None:
    """Another database (``mysql://``) would pass ``check`` and fail at the first pass.
    The URL is never echoed: it may hold a password."""
    scheme = url.split("://", 1)[0] if url and "://" in url else None
    if url and scheme not in STORE_DRIVERS:
        said = f"{scheme}:// is not supported" if scheme else "not a database URL"
        raise ValueError(f"{said} (use sqlite:///monitor.db or "
                         "postgresql+psycopg://user@host/db)")
    return url


class StoreSettings(BaseModel):
    """``store:``: the database URL alone (``store: sqlite:///monitor.db``), or a mapping
    that also says how long posts' text and author are kept (``retention``; none: for ever).
    Older posts keep their figures (scores, flags, counts) for the digest and launch history;
    ``monitor prune`` and the daemon drop the rest."""

    model_config = ConfigDict(extra="forbid")
    url: str | None = None
    retention: Retention | None = Field(None, description="posts first seen longer ago lose "
                                        "their text, title and author")

    @field_validator("url")
    @classmethod
    def _url_known(cls, url: str | None) -> str | None:
        return _known_database(url)


class MainConfig(BaseModel):
    """The keys of ``config.yaml``."""

    model_config = ConfigDict(extra="forbid")
    store: StoreSettings = StoreSettings()
    timezone: TimeZoneName = "UTC"
    sources: str = "sources/"
    rules: str = "rules/"
    reports: str = "reports/"
    interval: Interval = 900.0
    quiet_after: Span = 3 * 86400.0
    concurrency: int = Field(8, ge=1, le=32)
    http: HttpSettings = HttpSettings()
    events: list[Event] = []
    vip_authors: list[str] = []
    team: Team = []
    sla: SlaTimes = SlaTimes()
    assignment: Assignment | None = None
    routing: RoutingSpec = RoutingSpec()
    receivers: dict[str, dict[str, Any]] = {}
    delivery: DeliverySettings = DeliverySettings()
    digest: DigestSettings = DigestSettings()
    followup: FollowupSettings = FollowupSettings()
    metrics: MetricsSettings = MetricsSettings()
    alerts: AlertSettings = AlertSettings()
    web: WebSettings | None = None

    @field_validator("store", mode="before")
    @classmethod
    def _url_alone(cls, value: Any) -> Any:
        """``store: URL`` (the older, shorter form) is ``store: {url: URL}``; its mistake is
        said at ``store``, as it always was."""
        if value is None:
            return {}
        if isinstance(value, str):
            return {"url": _known_database(value)}
        if not isinstance(value, dict):
            raise ValueError("must be a database URL, or a mapping with url and retention "
                             "(store: {url: sqlite:///monitor.db, retention: 400d})")
        return value


class SourceCommon(BaseModel):
    """Keys every source has, whatever its kind."""

    model_config = ConfigDict(extra="allow")
    name: str = Field(min_length=1)
    kind: str = Field(min_length=1)
    interval: Interval | None = None
    quiet_after: Span | None = None
    tags: list[str] = []

    @field_validator("name")
    @classmethod
    def _one_line(cls, name: str) -> str:
        """A name is shown in logs, reports, metrics labels and Slack: a newline or control
        character there would forge lines, and a name of a thousand characters fits nowhere."""
        if len(name) > MAX_NAME or not name.isprintable() or name != name.strip():
            raise ValueError(f"must be 1 to {MAX_NAME} printable characters (no newline, tab "
                             "or other control character), without spaces at either end")
        return name

    @field_validator("name")
    @classmethod
    def _not_reserved(cls, name: str) -> str:
        """Storms and the monitor's own alerts are stored under these prefixes: a source
        named so would have its posts taken for them."""
        if name.startswith((STORM_SOURCE, SYSTEM_SOURCE)):
            raise ValueError(f"names starting with {STORM_SOURCE!r} or {SYSTEM_SOURCE!r} are "
                             "reserved (storms and the monitor's own alerts)")
        return name


@dataclass(frozen=True)
class Source:
    """One configured source: common keys plus its kind's validated options."""

    name: str
    kind: str
    interval: float
    tags: tuple[str, ...]
    options: BaseModel
    file: str
    quiet_after: float = 3 * 86400.0


@dataclass(frozen=True)
class Config:
    path: Path
    main: MainConfig
    store_url: str
    sources: tuple[Source, ...]
    rules: RuleSet
    reports_dir: Path
    routes: RouteTree
    receivers: dict[str, Receiver]
    policy: QueuePolicy
    notices: tuple[str, ...] = ()   # "file: key: message" on what works but is written the old way
    profanity: tuple[list[str], list[str]] = ([], [])  # (added, removed): rules/profanity.txt

    @property
    def timezone(self) -> ZoneInfo:
        return ZoneInfo(self.main.timezone)

    @property
    def retention(self) -> float | None:
        """Seconds a post's text and author are kept (``store.retention``); None: for ever."""
        return self.main.store.retention

    def source(self, name: str) -> Source:
        return next(s for s in self.sources if s.name == name)

    def replies(self) -> tuple[Reply, ...]:
        """The reply templates: the project's ``rules/replies.yaml``, else the shipped ones."""
        path = self.path.parent / self.main.rules / REPLIES_FILE
        if not path.exists():
            path = Path(__file__).parent / "demo" / "rules" / REPLIES_FILE
        stat = path.stat()
        return _replies(path, shown_path(path, self.path.parent), stat.st_mtime_ns, stat.st_size)


@functools.lru_cache(maxsize=16)
def _replies(path: Path, shown: str, _mtime: int, _size: int) -> tuple[Reply, ...]:
    """The templates of a file, read again only once it changed: a case page shows them."""
    return load_replies(path, shown)


def load(path: str | Path = "config.yaml", *, scoring_only: bool = False) -> Config:
    """Read everything the config names; raise one ConfigError listing every mistake of
    every file (``config.yaml``'s first), so one ``monitor check`` shows them all.

    ``scoring_only``: the main file and the rules, not the sources and receivers (none of
    them, and none of their libraries): what ``monitor score`` needs to start fast."""
    path = Path(path)
    base = path.parent
    problems: list[ConfigError] = []
    if not path.exists():
        raise ConfigError("file not found (pass --config PATH, or start a project with "
                          "`monitor init`)", str(path))
    main, wrong = _main_config(read_yaml(path, path.name), path.name, problems)
    store_url = _store_url(main.store.url, base)
    kept = main.store.retention
    if kept is not None and (said := retention_problem(kept, main.followup.window)):
        problems.append(ConfigError(said, path.name, "store.retention"))
    routes = RouteTree.of(main.routing)
    receivers = {} if scoring_only else _receivers(main, routes, path.name, problems,
                                                   names_known="receivers" not in wrong)
    try:
        policy = QueuePolicy.of(main.team, main.sla, main.assignment, path.name)
    except ConfigError as error:
        problems.append(error)
        policy = QueuePolicy()
    sources = [] if scoring_only else _load_sources(base / main.sources, base, main, problems)
    try:
        rules = load_rules(base / main.rules, base)
    except ConfigError as error:
        problems.append(error)
        rules = RuleSet(())
    profanity = _word_file(base / main.rules / PROFANITY_FILE, base, problems)
    if not scoring_only:
        _check_replies(base / main.rules / REPLIES_FILE, base, problems)
        if (base / main.reports).exists() and not (base / main.reports).is_dir():
            problems.append(ConfigError("is a file, not a folder: reports are written into "
                                        "a folder (made when missing)", path.name, "reports"))
    if problems:
        raise ConfigError.combine(problems)
    notices = (*rules.notices, *(f"{path.name}: {key}: {message}"
                                 for key, message in routes.notices()))
    return Config(path=path, main=main, store_url=store_url, sources=tuple(sources),
                  rules=rules, reports_dir=base / main.reports, routes=routes,
                  receivers=receivers, policy=policy, notices=notices, profanity=profanity)


def _word_file(path: Path, base: Path,
               problems: list[ConfigError]) -> tuple[list[str], list[str]]:
    """``rules/profanity.txt``: any failure to read it (too large, not UTF-8, unreadable)
    is a mistake now, never a crash at every pass."""
    shown = shown_path(path, base)
    try:
        if path.is_file() and path.stat().st_size > MAX_FILE_BYTES:
            raise ConfigError("larger than 1 MiB: too large for a word list", shown)
        return load_word_file(path, shown)
    except ConfigError as error:
        problems.append(error)
    except (OSError, UnicodeDecodeError, ValueError) as error:
        problems.append(ConfigError(f"cannot read ({error})", shown))
    return [], []


def _check_replies(path: Path, base: Path, problems: list[ConfigError]) -> None:
    """``rules/replies.yaml``, the queue's reply templates, read by ``monitor queue show``:
    checked here so a mistake in it shows in ``monitor check``, not when a case is opened."""
    if path.exists():
        try:
            load_replies(path, shown_path(path, base))
        except ConfigError as error:
            problems.append(error)


def _main_config(raw: dict[str, Any], file: str,
                 problems: list[ConfigError]) -> tuple[MainConfig, set[str]]:
    """``config.yaml``'s settings, and the top-level keys that are wrong. Mistakes go to
    ``problems``; the keys that are right are kept (the wrong ones default) so the sources
    and rules can be checked in the same run, in the folders the file names."""
    unset: list[ConfigError] = []
    data = _expand(raw, file, "", unset)
    found: list[ConfigError] = []
    wrong: set[str] = set()
    try:
        main = MainConfig.model_validate(data)
    except ValidationError as error:
        found = _errors(error, file, "")
        wrong = {str(e["loc"][0]) for e in error.errors() if e["loc"]}
        try:
            main = MainConfig.model_validate({k: v for k, v in data.items() if k not in wrong})
        except ValidationError:  # a mistake only the whole file shows: nothing to keep
            main = MainConfig()
    problems += _beside_unset(found, unset)
    return main, wrong


def _receivers(main: MainConfig, routes: RouteTree, file: str, problems: list[ConfigError],
               names_known: bool = True) -> dict[str, Receiver]:
    """Build every configured receiver (checking its options) and check that the routing
    tree and ``alerts`` name only receivers that exist (``queue`` always does for routes).
    ``names_known`` is false when ``receivers:`` itself is wrong: then every name would look
    unknown, and saying so would bury the real mistake."""
    built: dict[str, Receiver] = {}
    for name, spec in main.receivers.items():
        try:
            built[name] = build_receiver(name, spec, file)
        except ConfigError as error:
            problems.append(error)
    if not names_known:
        return built
    for i, name in enumerate(main.alerts.receivers):
        if name == QUEUE:
            problems.append(ConfigError("the outreach queue takes no alerts about the monitor "
                                        "itself: name a Slack, e-mail or webhook receiver",
                                        file, f"alerts.receivers[{i}]"))
        elif name not in main.receivers:
            problems.append(ConfigError(f"unknown receiver {name!r} (configured: "
                                        f"{', '.join(main.receivers) or 'none'})", file,
                                        f"alerts.receivers[{i}]"))
    for key, name in routes.receiver_uses():
        if name != QUEUE and name not in main.receivers:
            known = ", ".join([QUEUE, *main.receivers])
            problems.append(ConfigError(f"unknown receiver {name!r} (known: {known})", file,
                                        key))
    _check_digest(main, file, problems)
    return built


def retention_problem(seconds: float, followup_window: float) -> str | None:
    """Why a retention (config's, or ``monitor prune --older-than``) would break a figure;
    None when it would not. The follow-up reads an answered author's posts for
    ``followup.window``: pruned earlier, their author would be gone and them with it."""
    if seconds <= followup_window:
        return (f"must be longer than followup.window ({spoken(followup_window)}): the "
                "follow-up of answered cases reads their authors' posts that long")
    return None


def _check_digest(main: MainConfig, file: str, problems: list[ConfigError]) -> None:
    """``digest.to`` and ``events[].report`` need an e-mail receiver to borrow SMTP settings
    from."""
    emails = [n for n, spec in main.receivers.items() if spec.get("type") == "email"]
    via = main.digest.via
    mailing = [("digest.to", bool(main.digest.to))] + [
        (f"events[{i}].report", e.report is not None) for i, e in enumerate(main.events)]
    if via is not None and via not in emails:
        problems.append(ConfigError(f"{via!r} is not an e-mail receiver (e-mail receivers: "
                                    f"{', '.join(emails) or 'none'})", file, "digest.via"))
    elif via is None and len(emails) != 1:
        for key in (key for key, wanted in mailing if wanted):
            problems.append(ConfigError(
                "set digest.via: the e-mail receiver whose SMTP settings send reports "
                f"(e-mail receivers: {', '.join(emails) or 'none'})", file, key))


def _expand(value: Any, file: str, key: str, unset: list[ConfigError]) -> Any:
    """Replace ``${VAR}`` (or ``${VAR:-default}``: the default when VAR is unset or empty,
    as in a shell) in every string with the environment's.

    An unset variable (without a default) becomes "" and a mistake in ``unset``, so one run
    names every variable still to set, each with its key."""
    if isinstance(value, dict):
        return {k: _expand(v, file, f"{key}.{_part(k)}" if key else _part(k), unset)
                for k, v in value.items()}
    if isinstance(value, list):
        return [_expand(v, file, f"{key}[{i}]", unset) for i, v in enumerate(value)]
    if isinstance(value, str) and "${" in value:
        def replace(match: re.Match[str]) -> str:
            found = os.environ.get(match.group(1))
            if found is None and match.group(2) is None:
                unset.append(ConfigError(f"environment variable {match.group(1)} is not set",
                                         file, key))
                return ""
            return found if found or match.group(2) is None else match.group(2)  # as sh
        return _ENV.sub(replace, value)
    return value


def _beside_unset(found: list[ConfigError], unset: list[ConfigError]) -> list[ConfigError]:
    """The unset variables, then the other mistakes: a mistake at a key whose variable is
    unset is that variable's doing (an empty host is no URL), so it is said once."""
    keys = {e.key for e in unset}
    return [*unset, *(p for e in found for p in e.problems if p.key not in keys)]


def _errors(error: ValidationError, file: str, prefix: str) -> list[ConfigError]:
    return [ConfigError(_message(e), file, _key(prefix, e["loc"])) for e in error.errors()]


def _validate(model: type[BaseModel], data: Any, file: str, prefix: str) -> Any:
    try:
        return model.model_validate(data)
    except ValidationError as error:
        raise ConfigError.combine(_errors(error, file, prefix)) from None


def _load_sources(folder: Path, base: Path, main: MainConfig,
                  problems: list[ConfigError]) -> list[Source]:
    if not folder.is_dir():
        problems.append(ConfigError("sources folder not found", shown_path(folder, base)))
        return []
    sources: list[Source] = []
    seen: dict[str, str] = {}
    for file in sorted(folder.glob("*.y*ml")):
        shown = shown_path(file, base)
        try:
            data = read_yaml(file, shown)
            entries = data.get("sources")
            if entries is None and "sources" in data:
                entries = []  # `sources:` with every entry commented out: none yet
            if not isinstance(entries, list):
                raise ConfigError("must hold a list of sources", shown, "sources")
        except ConfigError as error:
            problems.append(error)
            continue
        for i, entry in enumerate(entries):
            key = f"sources[{i}]"
            try:
                source = _source(entry, shown, key, main)
                if source.name in seen:
                    raise ConfigError(f"duplicate source name {source.name!r} (also in "
                                      f"{seen[source.name]})", shown, f"{key}.name")
            except ConfigError as error:
                problems.append(error)
                continue
            seen[source.name] = shown
            sources.append(source)
    return sources


def _source(entry: Any, shown: str, key: str, main: MainConfig) -> Source:
    """One source entry, checked twice over: the common keys, and its kind's own keys."""
    unset: list[ConfigError] = []
    entry = _expand(entry, shown, key, unset)
    if not isinstance(entry, dict):
        raise ConfigError.combine([*unset, ConfigError(
            "must be a mapping (name: ..., kind: ..., ...)", shown, key)])
    found: list[ConfigError] = []
    common = options = None
    try:
        common = _validate(SourceCommon, entry, shown, key)
    except ConfigError as error:
        found.append(error)
    if isinstance(entry.get("kind"), str):  # check the kind's keys even if others failed
        try:
            try:
                options_model = collector_class(entry["kind"]).Options
            except ConfigError as error:
                raise ConfigError(error.message, shown, f"{key}.kind") from None
            extra = {k: v for k, v in entry.items() if k not in SourceCommon.model_fields}
            options = _validate(options_model, extra, shown, key)
        except ConfigError as error:
            found.append(error)
    if unset or found or common is None or options is None:
        raise ConfigError.combine(_beside_unset(found, unset))
    return Source(common.name, common.kind, _given(common.interval, main.interval),
                  tuple(common.tags), options, shown, _given(common.quiet_after,
                                                             main.quiet_after))


def _given(value: float | None, default: float) -> float:
    """``value`` unless unset: 0 is a value (refused by its bounds), not "use the default"."""
    return default if value is None else value


def _store_url(store: str | None, base: Path) -> str:
    if not store:
        return f"sqlite:///{(base / 'monitor.db').resolve()}"
    prefix = "sqlite:///"
    if store.startswith(prefix) and not store.startswith(prefix + "/") and store != prefix:
        return prefix + str((base / store[len(prefix):]).resolve())
    return store


_FRIENDLY = {
    "missing": "required",
    "extra_forbidden": "unknown key",
    "url_parsing": "not a valid URL",
    "url_scheme": "not a valid URL (use http:// or https://)",
    "url_type": "not a valid URL",
}


def _message(error: Any) -> str:
    friendly = _FRIENDLY.get(error["type"])
    if friendly:
        return friendly
    message = str(error["msg"])
    return message.removeprefix("Value error, ")


def _key(prefix: str, loc: tuple[Any, ...]) -> str:
    key = prefix
    for part in loc:
        key += f"[{part}]" if isinstance(part, int) else (f".{_part(part)}" if key
                                                           else _part(part))
    return key


def _part(name: Any) -> str:
    """A key as a message shows it: quoted when not printable (a newline in a key would
    split one mistake over two lines, or forge one)."""
    text = str(name)
    return text if text.isprintable() else repr(text)
