"""What a config becomes to run: the scorer, rules, VIP list, sources, route tree and
watched launches, compiled once (word lists, cues, rules and models are the slow part) and
swapped whole when the daemon reloads.

Shared by the pipeline, ``monitor rescore``, ``monitor score`` and ``monitor rules test``, so a
rule author sees exactly what the pass would do.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import TYPE_CHECKING, Any, TypeVar

from monitor.backlash.events import FORMING_WAIT, WatchedEvent, watched
from monitor.config import Config, Source
from monitor.model import QUEUE, Flag, Post, Routing, Score, is_system_source
from monitor.route import Labels, RouteTree, group_key, silenced
from monitor.rules import RuleSet, VipList
from monitor.scoring import Scorer

if TYPE_CHECKING:
    from monitor.store import Store

log = logging.getLogger(__name__)

B = TypeVar("B")


@dataclass(frozen=True)
class Runtime:
    """One config compiled: its scorer, rules, VIP list, sources, route tree and launches."""

    config: Config  # what it was compiled from
    scorer: Scorer
    rules: RuleSet
    vips: VipList
    sources: Mapping[str, Source]
    routes: RouteTree = RouteTree.of()
    events: tuple[WatchedEvent, ...] = ()

    @classmethod
    def of(cls, config: Config, learned: Mapping[tuple[str, str], Any] | None = None,
           ) -> Runtime:
        """The config's launch keywords count as change talk; ``rules/profanity.txt`` adjusts
        the built-in swear words; ``learned``: the store's models (``learned_models``)."""
        added, removed = config.profanity
        launch_words = [word for event in config.main.events for word in event.keywords]
        return cls(config, Scorer(added, removed, launch_words, learned=learned), config.rules,
                   VipList.of(config.main.vip_authors), {s.name: s for s in config.sources},
                   config.routes,
                   tuple(watched(config.main.events, config.timezone, config.sources)))

    def judge(self, posts: Sequence[Post]) -> list[tuple[Score, Flag | None]]:
        """(score, flag or None) per post, in order; the rules see each post's source kind and
        tags and whether its author is a VIP."""
        out = []
        for post, score in zip(posts, self.scorer.score_posts(posts), strict=True):
            source = self.sources.get(post.source)
            out.append((score, self.rules.evaluate(
                post, score, kind=source.kind if source else None,
                tags=source.tags if source else (), vip=post.author in self.vips)))
        return out

    def judge_batches(self, batches: Iterable[B], posts_of: Callable[[B], Sequence[Post]],
                      jobs: int = 1) -> Iterator[tuple[B, list[tuple[Score, Flag | None]]]]:
        """(batch, its judgements) for every batch, in order. The first batch is judged here;
        when more follow and ``jobs`` > 1, the rest in that many forked processes
        (``monitor.parallel``): a rescore or an import of many posts uses every core, a poll
        with one batch never starts a process."""
        batches = iter(batches)
        first = next(batches, None)
        if first is None:
            return
        yield first, self.judge(posts_of(first))

        def judged(batch: B) -> tuple[B, list[tuple[Score, Flag | None]]]:
            return batch, self.judge(posts_of(batch))

        from monitor.parallel import can_fork, forked_map

        if jobs > 1 and can_fork():
            yield from forked_map(judged, batches, jobs)
        else:
            yield from map(judged, batches)

    def route(self, post: Post, score: Score, flag: Flag,
              silences: Iterable[Mapping[str, str]] = (),
              storms: Mapping[str, int] | None = None) -> Routing:
        """Where a newly flagged post goes: the receivers of every route it reaches, grouped
        as the first of them says, muted when an active silence (its matchers) matches, and
        folded into an open storm's case (``storms``: storm source -> case id) when it talks
        about that storm's launch. The monitor's alerts about itself (``monitor.alarms``) go
        to config ``alerts.receivers`` and to the routes they reach below the root (a route
        matching ``category: system``), never to the root's receivers or the queue. Praise
        needs no answer: it goes only where a route below the root takes it (a route
        matching ``category: praise``), never to the root's receivers, so by default it is
        listed in the digest and opens no case."""
        source = self.sources.get(post.source)
        alert = is_system_source(post.source)
        kind = "system" if alert else source.kind if source else None
        labels = Labels.of(post, score, flag, kind, post.author in self.vips,
                           source.tags if source else ())
        reached = self.routes.route(labels)
        receivers = tuple(name for routed in reached for name in routed.receivers)
        if alert:  # to the admins and routes that ask for them; never the root's or the queue
            routed = (n for r in reached if r.path != "root" for n in r.receivers)
            receivers = tuple(dict.fromkeys(
                n for n in (*self.config.main.alerts.receivers, *routed) if n != QUEUE))
        elif not flag.needs_person:  # praise: only where a route below the root asks for it
            receivers = tuple(dict.fromkeys(
                n for r in reached if r.path != "root" for n in r.receivers))
        first = reached[0] if reached else self.routes.settings
        folded = next((storms[e.storm_source] for e in self.events if storms and
                       e.storm_source in storms and e.mentions(post.source, post.title,
                                                               post.text)), None)
        wait = min((r.group_wait for r in reached), default=first.group_wait)
        if folded is None and any(e.may_storm(post.source, post.title, post.text,
                                              score.compound, datetime.now(UTC))
                                  for e in self.events):
            wait = max(wait, FORMING_WAIT)  # a storm may be forming: let it fold this notice
        return Routing(receivers, group_key(labels, first.group_by), wait,
                       any(silenced(labels, m) for m in silences), labels.vip, folded)


def learned_models(store: Store) -> dict[tuple[str, str], tuple[str, Any]]:
    """(signal, language) -> ("learned:<id>", model) of the models ``monitor learn`` made
    active in the store. A store that cannot be read, or a model that cannot be loaded, leaves
    the shipped model in use there (logged): scoring never stops for a learned model."""
    from sqlalchemy.exc import SQLAlchemyError

    from monitor.scoring.training import from_bytes

    try:
        active = store.active_models()
    except SQLAlchemyError as error:
        log.warning("learned models not read (%s): using the shipped ones", error)
        return {}
    out = {}
    for key, stored in active.items():
        try:
            out[key] = (f"learned:{stored.id}", from_bytes(stored.data))
        except (ValueError, KeyError, OSError) as error:
            log.warning("learned model %d not loaded (%s): using the shipped one", stored.id,
                        error)
    return out
