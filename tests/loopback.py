"""A real HTTP server on 127.0.0.1 that replays recorded responses, for collector tests.

Each path gets a Route (or a list of Routes served in turn, the last one repeating). Routes
honour conditional GET the way a well-behaved server does, can be slow, can fail, and can
send an endless body; every request is recorded so tests can see what the client sent.
"""

from __future__ import annotations

import sys
import threading
import time
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


@dataclass
class Route:
    body: bytes = b""
    status: int = 200
    headers: dict[str, str] = field(default_factory=dict)
    etag: str | None = None           # answer 304 when If-None-Match matches
    last_modified: str | None = None  # answer 304 when If-Modified-Since matches exactly
    delay: float = 0.0                # seconds before answering
    stream_bytes: int = 0             # send this many filler bytes with no Content-Length


@dataclass
class Seen:
    path: str
    headers: dict[str, str]


class _QuietServer(ThreadingHTTPServer):
    def handle_error(self, request: object, client_address: object) -> None:
        if not isinstance(sys.exc_info()[1], ConnectionError):  # clients hang up on purpose
            super().handle_error(request, client_address)  # type: ignore[arg-type]


class LoopbackServer:
    def __init__(self) -> None:
        self.routes: dict[str, list[Route]] = {}
        self.requests: list[Seen] = []
        self._lock = threading.Lock()
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"
            disable_nagle_algorithm = True  # headers and body are two writes: no 40 ms stall

            def do_GET(self) -> None:  # noqa: N802 (http.server's naming)
                server._answer(self)

            def log_message(self, *args: object) -> None:
                pass

        self.httpd = _QuietServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,),
                                       daemon=True)
        self.thread.start()

    @property
    def base(self) -> str:
        return f"http://127.0.0.1:{self.httpd.server_address[1]}"

    def url(self, path: str) -> str:
        return self.base + path

    def serve(self, path: str, *routes: Route, **one: object) -> str:
        """Serve ``routes`` in turn at ``path`` (or one Route built from keywords)."""
        with self._lock:
            self.routes[path] = list(routes) or [Route(**one)]  # type: ignore[arg-type]
        return self.url(path)

    def reset(self) -> None:
        with self._lock:
            self.routes.clear()
            self.requests.clear()

    def hits(self, path: str) -> list[Seen]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _answer(self, handler: BaseHTTPRequestHandler) -> None:
        with self._lock:
            self.requests.append(Seen(handler.path, dict(handler.headers.items())))
            queue = self.routes.get(handler.path)
            route = (queue.pop(0) if len(queue) > 1 else queue[0]) if queue else None
        if route is None:
            route = Route(b"not found", status=404)
        if route.delay:
            time.sleep(route.delay)
        conditional = (route.etag and handler.headers.get("If-None-Match") == route.etag) or (
            route.last_modified and handler.headers.get("If-Modified-Since")
            == route.last_modified)
        try:
            if conditional:
                handler.send_response(304)
                handler.send_header("Content-Length", "0")
                handler.end_headers()
                return
            handler.send_response(route.status)
            for name, value in route.headers.items():
                handler.send_header(name, value)
            if route.etag:
                handler.send_header("ETag", route.etag)
            if route.last_modified:
                handler.send_header("Last-Modified", route.last_modified)
            if route.stream_bytes:
                handler.send_header("Connection", "close")
                handler.end_headers()
                chunk = b"<!-- filler -->" * 4096
                sent = 0
                while sent < route.stream_bytes:
                    handler.wfile.write(chunk)
                    sent += len(chunk)
                return
            handler.send_header("Content-Length", str(len(route.body)))
            handler.end_headers()
            handler.wfile.write(route.body)
        except (BrokenPipeError, ConnectionResetError):
            pass  # the client gave up (size cap, timeout): that is what some tests want
