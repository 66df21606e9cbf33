"""Work spread over forked processes, answers kept in input order: scoring is pure Python,
so one process uses one core however many threads it has.

Forked, not spawned: each worker starts with the parent's compiled rules, scorer and models
(no second start-up of a second or more, and their memory pages shared). The function runs by
reference to a module global set before the fork, so it may be a closure or a bound method;
only the items and the answers are pickled.
"""

from __future__ import annotations

import multiprocessing
import os
import queue
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from typing import Any

from monitor.errors import MonitorError


def can_fork() -> bool:
    """Workers are forked (no second start-up); not on macOS, where forking is unsafe."""
    return "fork" in multiprocessing.get_all_start_methods() and sys.platform != "darwin"


def cores() -> int:
    """CPUs this process may run on (a container's limit, not the host's count)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not on Linux
        return os.cpu_count() or 1


def forked_map(work: Callable[[Any], Any], items: Iterable[Any], jobs: int,
               ahead: int = 4) -> Iterator[Any]:
    """``work(item)`` for every item, in ``jobs`` forked processes, yielded in input order.

    A thread reads the items and hands them out (``ahead`` per worker at most, so a long
    input is never read whole); this generator yields each answer once it and all before it
    are done. A worker's exception, or a worker that died, stops everything with a
    MonitorError; closing the generator early stops the workers.
    """
    global _WORK
    items = iter(items)
    first = next(items, None)
    if first is None:
        return
    _WORK = work
    pending: queue.Queue[Future[Any] | BaseException | None] = queue.Queue(ahead * jobs)
    stop = threading.Event()
    pool = ProcessPoolExecutor(jobs, multiprocessing.get_context("fork"),
                               initializer=_start_worker)
    try:
        # the first submit forks every worker: before our thread starts, as fork wants
        pending.put(pool.submit(_run, first))
        threading.Thread(target=_submit_all, args=(items, pool, pending, stop),
                         name="forked-map-reader", daemon=True).start()
        while (item := pending.get()) is not None:
            if isinstance(item, BaseException):
                raise item
            try:
                answer = item.result()
            except BrokenProcessPool:
                raise MonitorError("a worker process died (out of memory? killed?); "
                                   "try --jobs 1") from None
            except MonitorError:
                raise
            except Exception as error:
                raise MonitorError(f"failed in a worker process: {error!r}") from error
            yield answer
    finally:
        stop.set()
        _drain(pending)  # a reader blocked on a full queue sees ``stop`` and ends
        pool.shutdown(wait=True, cancel_futures=True)
        _drain(pending)
        _WORK = None


# What the workers run: set before the fork, so they have it without pickling it.
_WORK: Callable[[Any], Any] | None = None


def _run(item: Any) -> Any:
    assert _WORK is not None, "forked_map did not set the work"
    return _WORK(item)


def _start_worker() -> None:
    """Worker set-up, once per process: Ctrl-C is left to the parent, which stops the pool."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with_parent, args=(os.getppid(),), daemon=True).start()


def _exit_with_parent(parent: int) -> None:
    """A worker whose parent was killed (no pool shutdown) would wait for work forever."""
    while os.getppid() == parent:
        time.sleep(1.0)
    os._exit(1)


def _submit_all(items: Iterator[Any], pool: ProcessPoolExecutor,
                pending: queue.Queue[Future[Any] | BaseException | None],
                stop: threading.Event) -> None:
    """The reader thread: submit every item in order, then None; or the error that ended it.
    Ends early once the consumer sets ``stop`` (after a failure, or closing early)."""
    try:
        for item in items:
            if stop.is_set():
                return
            pending.put(pool.submit(_run, item))
    except BaseException as error:  # handed to the consumer, to raise
        pending.put(error)
        return
    pending.put(None)


def _drain(pending: queue.Queue[Any]) -> None:
    while True:
        try:
            pending.get_nowait()
        except queue.Empty:
            return
