"""The worker's own HTTP endpoint, served by its main process (the one that forks the pool):
``/metrics`` (every pool process's counters, merged from PROMETHEUS_MULTIPROC_DIR), ``/healthz`` (the main
process answers) and ``/readyz`` (the worker is consuming, and database, broker and storage are reachable)."""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from media_service import metrics, multiproc
from media_service.errors import MediaError

log = logging.getLogger("workers.observe")

Check = Callable[[], None]
READY_CACHE_SECONDS = 2.0


class WorkerProbe:
    """What /readyz reports. ``consuming`` is set when Celery says the worker is ready."""

    def __init__(self, checks: dict[str, Check]) -> None:
        self.checks = checks
        self.consuming = False
        self._lock = threading.Lock()
        self._cached: tuple[float, bool, dict[str, str]] | None = None

    def ready(self) -> tuple[bool, dict[str, str]]:
        with self._lock:
            now = time.monotonic()
            if self._cached is not None and now - self._cached[0] < READY_CACHE_SECONDS:
                return self._cached[1], dict(self._cached[2])
            results = {"consuming": "ok" if self.consuming else "starting"}
            for name, check in self.checks.items():
                try:
                    check()
                    results[name] = "ok"
                except MediaError as exc:
                    results[name] = exc.code
                except Exception as exc:
                    results[name] = type(exc).__name__
            ok = all(v == "ok" for v in results.values())
            self._cached = (now, ok, results)
            return ok, dict(results)


def _handler(probe: WorkerProbe) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                multiproc.reap_dead()
                self._send(200, metrics.render(), metrics.CONTENT_TYPE)
            elif path == "/healthz":
                self._send(200, b'{"status": "ok"}', "application/json")
            elif path == "/readyz":
                ok, checks = probe.ready()
                body = {"status": "ready" if ok else "unavailable", "checks": checks}
                self._send(200 if ok else 503, json.dumps(body).encode(), "application/json")
            else:
                self._send(404, b'{"error": {"code": "not_found", "message": "No such path."}}', "application/json")

        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, format: str, *args: object) -> None:  # scrapes every few seconds: not logged
            return

    return Handler


class MetricsServer:
    def __init__(self, host: str, port: int, probe: WorkerProbe) -> None:
        self.server = ThreadingHTTPServer((host, port), _handler(probe))
        self.server.daemon_threads = True
        self.thread = threading.Thread(target=self.server.serve_forever, name="metrics-server", daemon=True)

    @property
    def port(self) -> int:
        return int(self.server.server_address[1])

    def start(self) -> MetricsServer:
        self.thread.start()
        return self

    def stop(self) -> None:
        self.server.shutdown()
        self.server.server_close()
