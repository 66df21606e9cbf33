"""A webhook endpoint on 127.0.0.1 for receiver tests: it records every POST, answers as
told (or hangs), so tests see exactly what a receiver got and when."""

from __future__ import annotations

import json
import threading
import time
from dataclasses import dataclass
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any


@dataclass
class Hit:
    path: str
    headers: dict[str, str]       # names lower-cased
    body: bytes
    status: int | None = None     # what it answered; None: it never answered

    @property
    def key(self) -> str:
        return self.headers["idempotency-key"]

    @property
    def json(self) -> dict[str, Any]:
        return json.loads(self.body)

    @property
    def posts(self) -> list[str]:
        return [p["external_id"] for p in self.json["posts"]]


class Hook:
    """Records every POST and answers ``status`` with ``body`` after ``delay`` seconds.
    After ``hold()`` the next POST hangs until ``release()``, then is hung up on unanswered
    (its sender has been killed by then)."""

    def __init__(self) -> None:
        self.status, self.body, self.delay = 200, b"ok", 0.0
        self.hits: list[Hit] = []
        self.arrived = threading.Event()
        self._held: threading.Event | None = None
        self._lock = threading.Lock()
        hook = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:  # noqa: N802 (http.server's naming)
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hit = Hit(self.path, {k.lower(): v for k, v in self.headers.items()}, body)
                with hook._lock:
                    hook.hits.append(hit)
                    held, hook._held = hook._held, None
                    status, reply, delay = hook.status, hook.body, hook.delay
                if held is not None:
                    hook.arrived.set()
                    held.wait(30)
                    self.close_connection = True
                    return
                time.sleep(delay)
                try:
                    self.send_response(status)
                    self.send_header("Content-Length", str(len(reply)))
                    self.end_headers()
                    self.wfile.write(reply)
                    hit.status = status
                except (BrokenPipeError, ConnectionResetError):
                    pass

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True).start()

    def url(self, path: str = "/in") -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}{path}"

    def hold(self) -> None:
        self.arrived.clear()
        self._held = threading.Event()

    def release(self) -> None:
        if self._held is not None:
            self._held.set()

    def accepted(self) -> list[Hit]:
        return [h for h in self.hits if h.status is not None and 200 <= h.status < 300]
