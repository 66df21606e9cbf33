"""``monitor import``: a community's history brought in from files, so that a team installing
the monitor after a launch still has a "before".

The files are read (``monitor.imports``) on one thread, batch by batch; the posts a source
does not hold yet are judged by the scorer and rules on every core (``Runtime.judge_batches``);
each batch's posts, scores and flags are stored in one transaction on this thread, so a kill
leaves whole batches and a second run adds only what is missing. An imported post keeps its
own date, is flagged like any other, but opens no case and pages nobody unless asked
(``open_cases``: then a case in the queue, still no notification).
"""

from __future__ import annotations

import time
from collections import Counter
from collections.abc import Callable, Iterable, Iterator, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy.engine import Connection

from monitor.model import QUEUE, Flag, Post, Score
from monitor.runtime import Runtime
from monitor.store import Store, StoredPost
from monitor.store.history import insert_history, known_posts
from monitor.store.judged import save_judged

BATCH = 2_000
"""Posts read, judged and stored together: big enough that a batch's one INSERT and its
worker hand-off cost little per post, small enough that a kill loses seconds of work."""


@dataclass
class ImportReport:
    """What an import did, for the command's summary and its progress line."""

    read: int = 0          # posts read from the files
    added: int = 0         # new in the store
    known: int = 0         # already there (imported before, or collected live)
    flagged: int = 0
    filed: int = 0         # flagged posts filed in cases (--open-cases)
    skipped: Counter[str] = field(default_factory=Counter)  # why -> how many
    examples: list[str] = field(default_factory=list)      # the first few, with their place
    done_bytes: int = 0
    total_bytes: int = 0
    started: float = field(default_factory=time.monotonic)

    @property
    def rate(self) -> float:
        """Posts read a second so far."""
        return self.read / max(time.monotonic() - self.started, 1e-9)


Progress = Callable[[ImportReport], None]


def import_files(paths: Sequence[Path], store: Store, runtime: Runtime, source: str | None,
                 open_cases: bool = False, jobs: int = 1,
                 progress: Progress | None = None) -> ImportReport:
    """Import ``paths`` into ``store``; ``progress`` is called after each stored batch."""
    report = ImportReport(total_bytes=sum(p.stat().st_size for p in paths))
    batches = _new_posts(paths, store, source, report)
    muted = [s["matchers"] for s in store.silences(datetime.now(UTC))] if open_cases else []
    for batch, judgements in runtime.judge_batches(batches, list, jobs):
        now = datetime.now(UTC)
        with store.transaction() as db:
            stored = insert_history(db, batch, now)
            judged_of = dict(zip((id(p) for p in batch), judgements, strict=True))
            judged = [(s, *judged_of[id(s.post)]) for s in stored]
            newly = save_judged(db, judged, now)
            if open_cases:
                report.filed += _file_cases(db, runtime, judged, newly, muted, now)
        report.added += len(stored)
        report.known += len(batch) - len(stored)
        report.flagged += len(newly)
        if progress is not None:
            progress(report)
    return report


def _new_posts(paths: Sequence[Path], store: Store, source: str | None,
               report: ImportReport) -> Iterator[list[Post]]:
    """The files' posts in batches, without those the store holds already (looked up here,
    so a second import of a file scores nothing; the insert looks again under the lock)."""
    from monitor import imports

    batch: list[Post] = []
    titles: dict[str, str] = {}  # a dump of comments after its dump of submissions
    for path in paths:
        with _Counting(path, report) as counted:
            for item in imports.read(path, source, thread_titles=titles,
                                     position=counted.position):
                counted.update()
                if isinstance(item, imports.Skipped):
                    report.skipped[item.why.split(" (")[0]] += 1  # tallied without details
                    if len(report.examples) < 5:
                        report.examples.append(f"{item.where}: {item.why}")
                    continue
                report.read += 1
                batch.append(item)
                if len(batch) >= BATCH:
                    if fresh := _unknown(store, batch, report):
                        yield fresh
                    batch = []
    if batch and (fresh := _unknown(store, batch, report)):
        yield fresh


def _unknown(store: Store, batch: list[Post], report: ImportReport) -> list[Post]:
    known: set[tuple[str, str]] = set()
    with store.engine.connect() as db:
        for name in {p.source for p in batch}:
            wanted = [p.external_id for p in batch if p.source == name]
            known.update((name, e) for e in known_posts(db, name, wanted, ids_only=True))
    report.known += sum(1 for p in batch if (p.source, p.external_id) in known)
    return [p for p in batch if (p.source, p.external_id) not in known]


def _file_cases(db: Connection, runtime: Runtime,
                judged: Iterable[tuple[StoredPost, Score, Flag | None]],
                newly: Iterable[tuple[StoredPost, Flag]], muted: list[Mapping[str, str]],
                now: datetime) -> int:
    """``--open-cases``: a newly flagged imported post routed to the queue opens (or joins)
    its case, as a pass would file it; no notification is queued: old news pages nobody.
    Returns how many were filed."""
    from monitor.outbox import file_case

    scores = {id(stored): score for stored, score, _ in judged}
    filed = 0
    for stored, flag in newly:
        post = stored.post
        routing = runtime.route(post, scores[id(stored)], flag, muted)
        if QUEUE in routing.receivers and not routing.silenced:
            file_case(db, post_id=stored.id, post=post, flag=flag,
                      group_key=routing.group_key, vip=routing.vip, now=now,
                      policy=runtime.config.policy)
            filed += 1
    return filed


class _Counting:
    """How far through a file reading has got, by the file's own position on disk (so a
    .zst file's progress is its compressed bytes), checked every few hundred records."""

    def __init__(self, path: Path, report: ImportReport) -> None:
        from monitor.imports import Position

        self.report, self.seen, self.position = report, 0, Position()
        self.base = report.done_bytes
        self.size = path.stat().st_size

    def __enter__(self) -> _Counting:
        return self

    def update(self) -> None:
        self.seen += 1
        if self.seen % 500 == 0:
            done = self.base + min(self.size, self.position())
            self.report.done_bytes = max(self.report.done_bytes, done)

    def __exit__(self, *exc: object) -> None:
        self.report.done_bytes = self.base + self.size
