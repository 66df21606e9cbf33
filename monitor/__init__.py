"""feedback-monitor: hear what users say about a product in public, and answer the angry ones.

The public surface is the command line (``monitor --help``) and the names below.
"""

from monitor.errors import ConfigError, DeliveryError, MonitorError, SourceError, StoreError
from monitor.model import Fetch, Flag, Post, Score


def __getattr__(name: str) -> str:
    """``__version__``, read from the installed metadata on first use (importlib.metadata is
    slow to import, and most commands never ask)."""
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
    "ConfigError",
    "DeliveryError",
    "Fetch",
    "Flag",
    "MonitorError",
    "Post",
    "Score",
    "SourceError",
    "StoreError",
    "__version__",
]
