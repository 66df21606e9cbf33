"""Serving the web inbox with uvicorn: in the foreground (``monitor web``) or from a thread
of the daemon. The socket is bound here first, so a port in use is a clear error naming
``web.port`` (exit 2), not a log line from a thread nobody reads.
"""

from __future__ import annotations

import logging
import socket
import threading
from pathlib import Path
from typing import Any

from monitor.config import Config, WebSettings
from monitor.errors import ConfigError

log = logging.getLogger(__name__)


class WebServer:
    def __init__(self, config: Config, store: Any, host: str | None = None,
                 port: int | None = None) -> None:
        import uvicorn

        from monitor.web.app import create_app

        settings = config.main.web or WebSettings()
        self.host, self.port = host or settings.host, settings.port if port is None else port
        self.app = create_app(config, store)
        self.socket = _bind(self.host, self.port, config)
        self.server = uvicorn.Server(uvicorn.Config(
            self.app, log_level="warning", access_log=False, proxy_headers=False,
            server_header=False, timeout_graceful_shutdown=5))
        self.thread: threading.Thread | None = None

    @property
    def url(self) -> str:
        host = f"[{self.host}]" if ":" in self.host else self.host
        return f"http://{host}:{self.socket.getsockname()[1]}/"

    def run(self) -> None:
        """Serve until Ctrl-C or SIGTERM, then return (exit 0). The handlers set here stop the
        server: a signal before uvicorn takes over (still starting) is not lost, and the one
        uvicorn raises again once it has stopped does nothing more."""
        import signal

        def stop(*_: Any) -> None:
            self.server.should_exit = True

        for wanted in (signal.SIGINT, signal.SIGTERM):
            signal.signal(wanted, stop)
        log.info("web inbox on %s", self.url)
        self.server.run(sockets=[self.socket])

    def start(self) -> None:
        """Serve from a thread (uvicorn leaves the signals to the main thread: the daemon's);
        ``stop`` ends it."""
        self.thread = threading.Thread(target=self.server.run, kwargs={"sockets": [self.socket]},
                                       name="web", daemon=True)
        self.thread.start()
        log.info("web inbox on %s", self.url)

    def set_config(self, config: Config) -> None:
        """A reloaded config (SIGHUP): new team, launches and templates from the next page."""
        self.app.state.config = config

    def stop(self) -> None:
        self.server.should_exit = True
        if self.thread is not None:
            self.thread.join(timeout=10)
        self.socket.close()


def _bind(host: str, port: int, config: Config) -> socket.socket:
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    sock = socket.socket(family, socket.SOCK_STREAM)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((host, port))
    except OSError as error:
        sock.close()
        raise ConfigError(f"cannot serve the web inbox on {host}:{port} "
                          f"({error.strerror or error})", config.path.name, "web.port") from None
    sock.listen(128)
    sock.set_inheritable(True)
    return sock


CONFIG_ENV = "MONITOR_WEB_CONFIG"
"""How ``monitor web --workers N`` tells its worker processes which config to serve."""


def serve_workers(config_path: Path, config: Config, host: str | None, port: int | None,
                  workers: int) -> None:
    """Serve from ``workers`` processes sharing one socket (uvicorn's supervisor), so a team
    uses every core: one process serves about 60 pages a second on one core. Each worker opens
    its own store; sessions, presence and cases live in the store, so any worker may answer
    any request. Returns once Ctrl-C or SIGTERM stopped them all."""
    import os

    import uvicorn
    from uvicorn.supervisors import Multiprocess

    settings = config.main.web or WebSettings()
    sock = _bind(host or settings.host, port or settings.port, config)
    os.environ[CONFIG_ENV] = str(config_path.resolve())
    Multiprocess(uvicorn.Config(
        f"{__name__}:app_from_environment", factory=True, workers=workers,
        log_level="warning", access_log=False, proxy_headers=False, server_header=False,
        timeout_graceful_shutdown=5), sockets=[sock]).run()
    sock.close()


def app_from_environment() -> Any:
    """A worker's app: the config named by ``CONFIG_ENV``, its own store, the CLI's logging."""
    import os

    from monitor import config as configuration
    from monitor import logs
    from monitor.store import Store
    from monitor.web.app import create_app

    logs.setup(logging.INFO if os.environ.get("MONITOR_WEB_VERBOSE") else logging.WARNING,
               os.environ.get("MONITOR_LOG_FORMAT", "text"))
    config = configuration.load(os.environ[CONFIG_ENV])
    logs.protect(config)
    return create_app(config, Store(config.store_url))
