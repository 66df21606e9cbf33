"""A guard for tests of inputs that used to take forever: a generous limit, not a timing."""

from __future__ import annotations

import threading
from collections.abc import Callable
from typing import TypeVar

T = TypeVar("T")


def finishes(work: Callable[[], T], seconds: float = 60.0) -> T:
    """``work()``'s result; fails instead of hanging the suite when it never ends (the old
    code took minutes, or longer than the universe)."""
    result: list[T] = []
    worker = threading.Thread(target=lambda: result.append(work()), daemon=True)
    worker.start()
    worker.join(seconds)
    assert result, "still working after the guard's limit"
    return result[0]
