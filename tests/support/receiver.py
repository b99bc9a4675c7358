"""A webhook receiver on loopback for tests: records every request, and can fail the first N of each event."""

from __future__ import annotations

import http.server
import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

from tests.support.s3server import free_port


@dataclass
class Received:
    fail_first: int = 0  # per event id: answer 500 to this many attempts
    requests: list[dict[str, Any]] = field(default_factory=list)
    lock: threading.Lock = field(default_factory=threading.Lock)

    def delivered(self) -> list[dict[str, Any]]:
        """The requests answered 200, in order."""
        with self.lock:
            return [r for r in self.requests if r["answered"] == 200]


@contextmanager
def webhook_receiver(fail_first: int = 0) -> Iterator[tuple[str, Received]]:
    received = Received(fail_first)
    seen: dict[str, int] = {}

    class Handler(http.server.BaseHTTPRequestHandler):
        def log_message(self, *_args: object) -> None:
            pass

        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
            event_id = self.headers.get("Notes-Event-Id", "")
            with received.lock:
                seen[event_id] = seen.get(event_id, 0) + 1
                status = 500 if seen[event_id] <= received.fail_first else 200
                received.requests.append({"headers": dict(self.headers), "body": body, "json": json.loads(body),
                                          "answered": status})
            self.send_response(status)
            self.send_header("Content-Length", "0")
            self.end_headers()

    server = http.server.ThreadingHTTPServer(("127.0.0.1", free_port()), Handler)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{server.server_address[1]}/hook", received
    finally:
        server.shutdown()
        server.server_close()
