"""What ``import monitor`` offers a plugin author, and that it stays cheap to import."""

from __future__ import annotations

import subprocess
import sys

import monitor


def test_the_public_names_are_pinned() -> None:
    assert monitor.__all__ == [
        "Collector", "ConfigError", "DeliveryError", "Fetch", "Flag", "MonitorError", "Notice",
        "Post", "Receiver", "Score", "SourceError", "StoreError", "__version__",
    ]
    for name in monitor.__all__:
        assert getattr(monitor, name) is not None


def test_the_protocols_are_the_ones_the_code_uses() -> None:
    from monitor.collectors import Collector
    from monitor.collectors.rss import RssCollector, RssOptions
    from monitor.receivers import Receiver
    from monitor.receivers.slack import SlackOptions, SlackReceiver

    assert monitor.Collector is Collector and monitor.Receiver is Receiver
    rss = RssCollector("feed", RssOptions(url="https://example.com/feed"), http=None)
    slack = SlackReceiver("team", SlackOptions(webhook_url="https://hooks.example.com/x"))
    assert isinstance(rss, monitor.Collector) and isinstance(slack, monitor.Receiver)
    assert not isinstance(slack, monitor.Collector)


def test_import_monitor_stays_cheap() -> None:
    """Neither pydantic (the receivers' Options) nor importlib.metadata (``__version__``) is
    imported until asked for."""
    code = ("import sys, monitor; print(sorted(m for m in ('pydantic', 'importlib.metadata', "
            "'monitor.receivers', 'monitor.registry') if m in sys.modules))")
    found = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout
    assert found.strip() == "[]"
