"""feedback-monitor: hear what users say about a product in public, and answer the angry ones.

The public surface is the command line (``monitor --help``) and the names below: what a
plugin's collector or receiver is written against. ``import monitor`` stays cheap: the
Receiver protocol's module (pydantic and more) is imported when it is first asked for.
"""

from typing import Any

from monitor.collectors import Collector
from monitor.errors import ConfigError, DeliveryError, MonitorError, SourceError, StoreError
from monitor.model import Fetch, Flag, Notice, Post, Score


def __getattr__(name: str) -> Any:
    """``__version__``, read from the installed metadata on first use (importlib.metadata is
    slow to import, and most commands never ask); ``Receiver``, imported on first use."""
    if name == "Receiver":
        from monitor.receivers import Receiver

        globals()["Receiver"] = Receiver
        return Receiver
    if name != "__version__":
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    from importlib.metadata import PackageNotFoundError, version

    try:
        found = version("feedback-monitor")
    except PackageNotFoundError:  # running from a source tree that was never installed
        found = "0+unknown"
    globals()["__version__"] = found
    return found

__all__ = [
    "Collector",
    "ConfigError",
    "DeliveryError",
    "Fetch",
    "Flag",
    "MonitorError",
    "Notice",
    "Post",
    "Receiver",
    "Score",
    "SourceError",
    "StoreError",
    "__version__",
]
