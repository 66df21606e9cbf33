"""The routing tree (config ``routing:``): which receivers a flagged post goes to, grouped how.

Alertmanager's semantics, so whoever knows it can predict ours: the root matches every post;
at each node the children are tried in order, a matching one is descended into, and the search
stops at the first matching child unless it says ``continue: true``; a node none of whose
children match is itself a result. A child inherits the settings it leaves out. Pure: config.py
validates with ``RoutingSpec``; silences are stored elsewhere and matched here. A route's
``match:`` and a silence's matchers are matchers of ``monitor.matchers``, as a rule's
conditions on where a post came from are.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, replace
from typing import Annotated, Any, Literal

from pydantic import (
    AfterValidator,
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    field_validator,
    model_validator,
)

from monitor.matchers import (
    LABELS,
    RESPELLED,
    at_least,
    compile_matcher,
    respelled,
    respelling,
    severity,
)
from monitor.model import Flag, Post, Score
from monitor.units import DAY, Duration, between, parse_duration

GROUP_PARTS = ("thread", "author", "source", "category")   # also the order in a group key


def _listed(value: Any) -> Any:
    return [value] if isinstance(value, str) else value     # ``source: a`` = ``source: [a]``


def _severities(value: Any) -> Any:
    """``{min: high}`` (high and critical), or a name or list of them."""
    return at_least(value) if isinstance(value, dict) else _listed(value)


Names = Annotated[list[Annotated[str, Field(pattern=r"\S")]], BeforeValidator(_listed),
                  Field(min_length=1)]
Severities = Annotated[list[Annotated[str, AfterValidator(severity)]],
                       BeforeValidator(_severities), Field(min_length=1)]
GroupBy = list[Literal["thread", "author", "source", "category"]]
Wait = Annotated[Duration, Field(ge=0), between(0, DAY)]     # 0: notify at once
Repeat = Annotated[Duration, Field(gt=0), between(0, 365 * DAY, above=True)]


class _Strict(BaseModel):
    """Unknown keys are mistakes; so is an empty key (``severity:`` would match any post)."""

    model_config = ConfigDict(extra="forbid")

    @field_validator("*", mode="before")
    @classmethod
    def _not_empty(cls, value: Any) -> Any:
        if value is None:
            raise ValueError("is empty: give a value or leave the key out")
        return value


class MatchSpec(_Strict):
    """What a route matches, a matcher of ``monitor.matchers``: every key given must match; a
    list matches any of its names (case ignored, ``*`` = anything). No keys: every post."""

    source: Names | None = None
    kind: Names | None = None
    author: Names | None = None
    language: Names | None = None       # "unknown" when the scorer could not tell
    source_tag: Names | None = None     # the source's tags: any of them
    vip: bool | None = None
    severity: Severities | None = None
    category: Names | None = None
    flag_tag: Names | None = None       # the flag's tags: any of them
    rule: Names | None = None           # any of the rules that flagged the post
    tags: Names | None = None           # the old spelling of flag_tag

    @model_validator(mode="after")
    def _one_spelling(self) -> MatchSpec:
        if self.tags is not None and self.flag_tag is not None:
            raise ValueError("give flag_tag only (tags is its old spelling)")
        return self

    def labels(self) -> dict[str, Any]:
        """The matcher: label -> what it must be (old spellings made labels)."""
        return respelled({k: v for k, v in self if v is not None}, "route")


class RouteSpec(_Strict):
    """A child route; what it leaves out it inherits from its parent."""

    match: MatchSpec = MatchSpec()
    receivers: Names | None = None
    continue_: bool = Field(False, alias="continue")
    group_by: GroupBy | None = None
    group_wait: Wait | None = None
    repeat_interval: Repeat | None = None
    routes: list[RouteSpec] = []


class RoutingSpec(_Strict):
    """The root route (config ``routing:``): it matches every post, so it has no ``match``."""

    receivers: Names = ["queue"]
    group_by: GroupBy = ["thread"]
    group_wait: Wait = 30.0
    repeat_interval: Repeat = 4 * 3600.0
    routes: list[RouteSpec] = []


@dataclass(frozen=True, slots=True)
class Labels:
    """What routes, group keys and silences read, taken once from a flagged post: the labels
    object of ``monitor.matchers`` (``tags`` are the flag's, ``source_tags`` its source's)."""

    severity: str
    category: str | None
    tags: tuple[str, ...]
    source: str
    kind: str | None
    language: str
    vip: bool
    rules: tuple[str, ...]
    author: str | None
    thread: str         # the thread's id; a top-level post is its own thread
    post_id: str
    source_tags: tuple[str, ...] = ()

    @classmethod
    def of(cls, post: Post, score: Score, flag: Flag, kind: str | None = None,
           vip: bool = False, source_tags: Iterable[str] = ()) -> Labels:
        """``kind`` and ``source_tags`` are the post's source's; ``vip``: its author is on
        the VIP list."""
        return cls(flag.severity, flag.category, flag.tags, post.source, kind,
                   score.language or "unknown", vip, flag.rules, post.author,
                   post.thread_id or post.external_id, post.external_id, tuple(source_tags))


@dataclass(frozen=True, slots=True)
class Routed:
    """One route a post reached: whom to tell, and how to group and pace the telling.
    ``path`` ("root/0/1") names the route in messages."""

    receivers: tuple[str, ...]
    path: str
    group_by: tuple[str, ...]
    group_wait: float
    repeat_interval: float


@dataclass(frozen=True, slots=True)
class RouteTree:
    """A compiled route and its children (compile ``routing:`` once, route every post)."""

    settings: Routed                    # its own or inherited
    key: str                            # "routing.routes[0]", for config messages
    written: tuple[str, ...]            # the receivers written on this route itself
    matches: Callable[[Labels], bool]
    continues: bool
    children: tuple[RouteTree, ...]
    old_keys: tuple[str, ...] = ()      # old spellings in its ``match:`` (``tags``)

    @classmethod
    def of(cls, spec: RoutingSpec | RouteSpec | None = None, parent: Routed | None = None,
           path: str = "root", key: str = "routing") -> RouteTree:
        """The tree for ``spec``; without one, every post goes to the queue, by thread."""
        spec = spec or RoutingSpec()

        def own(name: str) -> Any:
            value = getattr(spec, name)
            return value if value is not None or parent is None else getattr(parent, name)
        settings = Routed(tuple(dict.fromkeys(own("receivers"))), path,
                          tuple(dict.fromkeys(own("group_by"))), own("group_wait"),
                          own("repeat_interval"))
        child = spec if isinstance(spec, RouteSpec) else None   # the root matches every post
        return cls(settings, key, tuple(spec.receivers or ()),
                   compile_matcher(child.match.labels() if child else {}),
                   bool(child and child.continue_),
                   tuple(cls.of(s, settings, f"{path}/{i}", f"{key}.routes[{i}]")
                         for i, s in enumerate(spec.routes)),
                   tuple(k for k, v in child.match if v is not None and k in RESPELLED["route"])
                   if child else ())

    def route(self, labels: Labels) -> list[Routed]:
        """Every route the post reaches, in tree order. A receiver is told once: it stays only
        in the first result naming it, and a result left with no receivers is dropped."""
        told: set[str] = set()
        routed = []
        for node in self._reached(labels):
            fresh = tuple(r for r in node.settings.receivers if r not in told)
            told.update(fresh)
            if fresh:
                routed.append(replace(node.settings, receivers=fresh))
        return routed

    def _reached(self, labels: Labels) -> list[RouteTree]:
        if not self.matches(labels):
            return []
        found: list[RouteTree] = []
        for child in self.children:
            reached = child._reached(labels)
            found += reached
            if reached and not child.continues:
                break
        return found or [self]

    def receiver_uses(self) -> list[tuple[str, str]]:
        """(key path, name) for every receiver written in the tree, so config.py can say
        where an unknown one is: ("routing.routes[0].receivers[1]", "slak")."""
        return [(f"{self.key}.receivers[{i}]", name) for i, name in enumerate(self.written)] + [
            use for child in self.children for use in child.receiver_uses()]

    def notices(self) -> list[tuple[str, str]]:
        """(key path, what to write instead) for every old spelling in the tree's matches,
        so ``monitor check`` can say how to write them now."""
        return [(f"{self.key}.match.{old}", respelling(old, RESPELLED["route"][old]))
                for old in self.old_keys] + [
            notice for child in self.children for notice in child.notices()]


def group_key(labels: Labels, group_by: Iterable[str]) -> str:
    """The group a post is notified with: "thread:<source>:<thread id>",
    "author:<source>:<author lowercased>" (a post without an author is alone: "#<its id>"),
    "source:<source>", "category:<category or none>"; several joined with "|" in the order
    of GROUP_PARTS, whatever the order given; none at all: "all" (one group)."""
    wanted = set(group_by)
    if unknown := wanted - set(GROUP_PARTS):
        raise ValueError(f"cannot group by {', '.join(sorted(unknown))}")
    author = labels.author.strip().lower() if labels.author and labels.author.strip() else None
    parts = {"thread": f"thread:{labels.source}:{labels.thread}",
             "author": f"author:{labels.source}:{author or '#' + labels.post_id}",
             "source": f"source:{labels.source}",
             "category": f"category:{labels.category or 'none'}"}
    # "|" in an id or a name is escaped, so a key always splits into its parts the same way
    return "|".join(parts[p].replace("%", "%25").replace("|", "%7C")
                    for p in GROUP_PARTS if p in wanted) or "all"


def parse_matchers(items: Iterable[str]) -> dict[str, str]:
    """Silence matchers as the CLI takes them ("source=reddit-*") -> {key: value}, keys as
    written (old spellings too: ``silenced`` reads them); a ValueError says which one is
    wrong and why. At least one: a silence without any would mute everything."""
    matchers: dict[str, str] = {}
    for item in items:
        key, equals, value = (part.strip() for part in item.partition("="))
        key = key.lower()
        label = RESPELLED["silence"].get(key, key)
        if not equals:
            problem = "write KEY=VALUE, e.g. source=reddit-*"
        elif label not in LABELS:
            problem = f"unknown key {key!r} (use one of {', '.join(LABELS)})"
        elif not value:
            problem = "the value is empty (use * for anything)"
        elif (wrong := _wrong(label, value)) is not None:
            problem = wrong
        elif label in respelled(matchers, "silence"):
            problem = f"{key} is given twice (a silence needs all of its matchers to match)"
        else:
            matchers[key] = value
            continue
        raise ValueError(f"bad matcher {item!r}: {problem}")
    if not matchers:
        raise ValueError("a silence needs at least one matcher (KEY=VALUE)")
    return matchers


def silence_seconds(lasting: str) -> float:
    """How long a silence lasts (``30m``, ``2h``, ``7d``); ValueError for no duration and for
    0, a silence over before it began, muting nothing."""
    seconds = parse_duration(lasting)
    if seconds <= 0:
        raise ValueError(f"{lasting!r}: a silence must last longer than 0s: say how long it "
                         "lasts (30m, 2h, 7d)")
    return seconds


def silence_notices(matchers: Mapping[str, str]) -> list[str]:
    """What to write instead of each old spelling among a silence's matchers."""
    return [respelling(key, RESPELLED["silence"][key]) for key in matchers
            if key in RESPELLED["silence"]]


def _wrong(label: str, value: str) -> str | None:
    """Why ``value`` cannot be matched against ``label``, or None."""
    try:
        compile_matcher({label: _typed(label, value)})
    except ValueError as error:
        return str(error)
    return None


def _typed(label: str, value: str) -> Any:
    """A value as the CLI writes it, as a matcher takes it: ``vip=true`` is a boolean."""
    if label != "vip":
        return value
    return {"true": True, "false": False}.get(value.lower(), value)


def silenced(labels: Labels, matchers: Mapping[str, str]) -> bool:
    """Whether a silence with ``matchers`` mutes the post: all must match (case ignored, ``*``
    = anything, ``flag_tag`` any of its tags). No matchers, or one we do not know, mutes
    nothing: a broken silence should let notifications through, not swallow them."""
    try:
        spec = respelled(matchers, "silence")
        return bool(spec) and compile_matcher(
            {label: _typed(label, value) for label, value in spec.items()})(labels)
    except ValueError:
        return False
