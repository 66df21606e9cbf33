"""Answers everyone shares for a while: the inbox's counts (20 people polling every 10 s) and
the lead pages' reports are slow to find and the same for every person who asks."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Hashable
from typing import Any, TypeVar

T = TypeVar("T")
log = logging.getLogger(__name__)


class SharedAnswers:
    """``find()`` once, then reused for ``keep`` seconds: a slow one longer, so that finding
    it costs at most ``share`` of a core, up to ``longest``. A little older, the old answer
    is still given while one background thread finds the new one (no page waits for what it
    showed a moment ago); much older (3 x ``keep``), it is found anew before answering. The
    first finding is done once (others asking meanwhile wait for it); an error is not kept."""

    def __init__(self, keep: float, longest: float, share: float = 0.05,
                 entries: int = 10_000) -> None:
        self.keep, self.longest, self.share, self.entries = keep, longest, share, entries
        self._lock = threading.Lock()
        self._found: dict[Hashable, _Entry] = {}

    def clear(self) -> None:
        with self._lock:
            self._found.clear()

    def get(self, key: Hashable, find: Callable[[], T]) -> T:
        with self._lock:
            entry = self._found.get(key)
            age = time.monotonic() - entry.at if entry is not None else 0.0
            first = entry is None or (entry.ready.is_set() and not entry.busy
                                      and age > 3 * max(self.keep, entry.keep))
            if first:
                if len(self._found) > self.entries:
                    self._found.clear()
                entry = self._found[key] = _Entry(self.keep)
            elif entry.ready.is_set() and not entry.busy and age > entry.keep:
                entry.busy = True
                threading.Thread(target=self._refresh, args=(entry, find), daemon=True,
                                 name="shared-answer").start()
        assert entry is not None
        if first:
            try:
                entry.value, entry.found = self._timed(entry, find), True
            except BaseException:
                with self._lock:
                    if self._found.get(key) is entry:
                        del self._found[key]
                raise
            finally:
                entry.at, entry.busy = time.monotonic(), False
                entry.ready.set()
            return entry.value
        if not entry.ready.wait(60) or not entry.found:  # the first finding failed (or hangs)
            return find()
        return entry.value

    def _timed(self, entry: _Entry, find: Callable[[], Any]) -> Any:
        start = time.monotonic()
        value = find()
        entry.keep = min(max(self.keep, (time.monotonic() - start) / self.share), self.longest)
        return value

    def _refresh(self, entry: _Entry, find: Callable[[], Any]) -> None:
        """In the background: the old answer stays until the new one is found (or, when
        finding fails, until the next try)."""
        try:
            entry.value = self._timed(entry, find)
            entry.at = time.monotonic()
        except Exception as error:  # the old answer stays; the next page tries again
            log.warning("web: a shared answer (a count, a report) failed: %s: %s",
                        type(error).__name__, (str(error).splitlines() or [""])[0])
        finally:
            entry.busy = False


class _Entry:
    """A shared answer: when it was found, and whether a thread is finding it anew."""

    __slots__ = ("at", "keep", "value", "found", "busy", "ready")

    def __init__(self, keep: float) -> None:
        self.at, self.keep, self.value, self.found, self.busy = 0.0, keep, None, False, True
        self.ready = threading.Event()  # set once the first finding ended
