"""feedback-monitor: hear what users say about a product in public, and answer the angry ones.

The public surface is the command line (``monitor --help``) and the names below.
"""

from importlib.metadata import PackageNotFoundError, version

from monitor.errors import ConfigError, DeliveryError, MonitorError, SourceError, StoreError
from monitor.model import Fetch, Flag, Post, Score

try:
    __version__ = version("feedback-monitor")
except PackageNotFoundError:  # running from a source tree that was never installed
    __version__ = "0+unknown"

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
