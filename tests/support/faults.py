"""Faults on demand, for the fault-injection tests: a private Redis that can be restarted (with its data on
disk), a TCP proxy that can cut every connection and refuse new ones (a database going away and coming
back, as its clients see it), and an HTTP proxy in front of the S3 server that answers 5xx or stalls."""

from __future__ import annotations

import http.client
import http.server
import os
import selectors
import signal
import socket
import subprocess
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlsplit

from tests.support.s3server import free_port

HOST = "127.0.0.1"


class RedisServer:
    """redis-server on a free port with append-only persistence (fsync always), so a restart keeps what
    was queued, as a production broker with persistence on would."""

    def __init__(self, folder: Path) -> None:
        self.folder = folder
        self.port = free_port()
        self.proc: subprocess.Popen[bytes] | None = None
        folder.mkdir(parents=True, exist_ok=True)

    @property
    def url(self) -> str:
        return f"redis://{HOST}:{self.port}/0"

    def start(self) -> None:
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", HOST, "--dir", str(self.folder), "--appendonly", "yes",
             "--appendfsync", "always", "--save", "", "--protected-mode", "no", "--daemonize", "no"],
            stdout=(self.folder / "redis.log").open("ab"), stderr=subprocess.STDOUT, start_new_session=True)
        deadline = time.monotonic() + 20
        while time.monotonic() < deadline:
            try:
                with socket.create_connection((HOST, self.port), timeout=0.5) as s:
                    s.sendall(b"PING\r\n")
                    if s.recv(16).startswith(b"+PONG"):
                        return
            except OSError:
                time.sleep(0.1)
        raise TimeoutError("redis-server did not start")

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGTERM)  # a clean shutdown: what a restart during a deploy does
            self.proc.wait(timeout=20)
        self.proc = None

    def restart(self, down_for: float = 0.0) -> None:
        self.stop()
        time.sleep(down_for)
        self.start()


class TcpProxy:
    """Forwards HOST:port to a target and counts the bytes clients send (``sent``). ``cut()`` resets every
    open connection and refuses new ones until ``restore()``: to a client, the server went away. With
    ``drop_after``, the first connection that has carried that many bytes towards the target is dropped
    there, mid-request (a phone leaving Wi-Fi): the client sees a reset, the server the stream end after the
    bytes already sent."""

    def __init__(self, target_host: str, target_port: int, drop_after: int | None = None) -> None:
        self.target = (target_host, target_port)
        self.drop_after = drop_after
        self.sent = 0
        self.drops = 0
        self.port = free_port()
        self._up = threading.Event()
        self._up.set()
        self._stop = threading.Event()
        self._conns: set[socket.socket] = set()
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._thread = threading.Thread(target=self._serve, daemon=True)

    def start(self) -> TcpProxy:
        self._open_listener()
        self._thread.start()
        return self

    def _open_listener(self) -> None:
        listener = socket.socket()
        listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        listener.bind((HOST, self.port))
        listener.listen(128)
        listener.settimeout(0.2)
        self._listener = listener

    def _serve(self) -> None:
        while not self._stop.is_set():
            listener = self._listener
            if listener is None or not self._up.is_set():
                time.sleep(0.05)
                continue
            try:
                client, _ = listener.accept()
            except (TimeoutError, OSError):
                continue
            try:
                upstream = socket.create_connection(self.target, timeout=5)
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns.update((client, upstream))
            threading.Thread(target=self._pipe, args=(client, upstream), daemon=True).start()

    def _pipe(self, a: socket.socket, b: socket.socket) -> None:
        """``a``: the client, ``b``: the target."""
        sel = selectors.DefaultSelector()
        sel.register(a, selectors.EVENT_READ, b)
        sel.register(b, selectors.EVENT_READ, a)
        dropped = False
        try:
            while not self._stop.is_set():
                for key, _ in sel.select(timeout=0.5):
                    src: socket.socket = key.fileobj  # type: ignore[assignment]
                    data = src.recv(65536)
                    if not data:
                        return
                    if src is a:
                        with self._lock:
                            if (self.drop_after is not None and self.drops == 0
                                    and self.sent + len(data) >= self.drop_after):
                                keep = self.drop_after - self.sent
                                b.sendall(data[:keep])
                                self.sent += keep
                                self.drops += 1
                                dropped = True
                                return
                            self.sent += len(data)
                    key.data.sendall(data)
        except OSError:
            return
        finally:
            sel.close()
            if dropped:
                # A reset towards the target would make its kernel drop what it had not read yet.
                with suppress(OSError):
                    a.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                with suppress(OSError):
                    b.shutdown(socket.SHUT_WR)
            for s in (a, b):
                with self._lock:
                    self._conns.discard(s)
                _close(s)

    def cut(self) -> None:
        self._up.clear()
        if self._listener is not None:
            self._listener.close()
            self._listener = None
        with self._lock:
            conns, self._conns = list(self._conns), set()
        for s in conns:
            with suppress(OSError):
                s.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")  # RST
            _close(s)

    def restore(self) -> None:
        self._open_listener()
        self._up.set()

    def close(self) -> None:
        self._stop.set()
        self.cut()


def _close(s: socket.socket) -> None:
    with suppress(OSError):
        s.close()


@dataclass
class HttpFaults:
    """What the S3 proxy does to the next requests: fail the next ``fail_next`` (matching ``methods``,
    all when empty) with ``status``; stall each for ``delay`` seconds; count what it saw."""

    status: int = 503
    fail_next: int = 0
    methods: set[str] = field(default_factory=set)
    delay: float = 0.0
    seen: int = 0
    failed: int = 0
    lock: threading.Lock = field(default_factory=threading.Lock)

    def take(self, method: str) -> tuple[int | None, float]:
        with self.lock:
            self.seen += 1
            if self.fail_next > 0 and (not self.methods or method in self.methods):
                self.fail_next -= 1
                self.failed += 1
                return self.status, self.delay
            return None, self.delay


@contextmanager
def http_fault_proxy(upstream: str) -> Iterator[tuple[str, HttpFaults]]:
    """A reverse proxy in front of ``upstream`` (the S3 server) that injects ``HttpFaults``."""
    faults = HttpFaults()
    target = urlsplit(upstream)

    class Handler(http.server.BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *_args: object) -> None:
            pass

        def _proxy(self) -> None:
            length = int(self.headers.get("Content-Length") or 0)
            body = self.rfile.read(length) if length else b""
            status, delay = faults.take(self.command)
            if delay:
                time.sleep(delay)
            if status is not None:
                payload = (b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>SlowDown</Code>'
                           b"<Message>injected</Message></Error>") if status == 503 else \
                    b'<?xml version="1.0" encoding="UTF-8"?><Error><Code>InternalError</Code></Error>'
                self.send_response(status)
                self.send_header("Content-Type", "application/xml")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                return
            conn = http.client.HTTPConnection(target.hostname or HOST, target.port, timeout=60)
            headers = {k: v for k, v in self.headers.items() if k.lower() not in ("connection", "keep-alive")}
            conn.request(self.command, self.path, body=body, headers=headers)
            resp = conn.getresponse()
            data = resp.read()
            self.send_response(resp.status)
            for k, v in resp.getheaders():
                if k.lower() not in ("transfer-encoding", "connection", "content-length"):
                    self.send_header(k, v)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            if self.command != "HEAD":
                self.wfile.write(data)
            conn.close()

        do_GET = do_PUT = do_POST = do_DELETE = do_HEAD = _proxy

    server = http.server.ThreadingHTTPServer((HOST, free_port()), Handler)
    server.daemon_threads = True
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://{HOST}:{server.server_address[1]}", faults
    finally:
        server.shutdown()
        server.server_close()


def processes_named(name: str, marker: str) -> list[int]:
    """Pids of live processes whose argv[0] ends with ``name`` and whose command line holds ``marker``."""
    pids: list[int] = []
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = (entry / "cmdline").read_bytes().split(b"\0")
        except OSError:
            continue
        if argv and argv[0].decode(errors="replace").endswith(name) and marker.encode() in b" ".join(argv):
            pids.append(int(entry.name))
    return pids


def children_of(pid: int) -> list[int]:
    try:
        return [int(p) for p in Path(f"/proc/{pid}/task/{pid}/children").read_text().split()]
    except OSError:
        return []


def wait_until(check: object, timeout: float, interval: float = 0.2, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if check():  # type: ignore[operator]
            return
        time.sleep(interval)
    raise TimeoutError(f"{what} not met within {timeout:.0f} s")


def kill(pid: int, sig: int = signal.SIGKILL) -> None:
    with suppress(ProcessLookupError):
        os.kill(pid, sig)
