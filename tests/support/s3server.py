"""Run moto's standalone S3-compatible server in a subprocess for tests.

A real HTTP server (not moto's in-process mocks) exercises the same code paths as production: real
sockets, presigned URLs that can be fetched, timeouts and connection errors.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import IO

_HOST = "127.0.0.1"


def free_port(host: str = _HOST) -> int:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        port: int = sock.getsockname()[1]
        return port


def moto_server_executable() -> Path:
    # Not resolved: the venv's python may be a symlink to a base interpreter whose bin has no moto_server.
    exe = Path(sys.executable).parent / "moto_server"
    if not exe.exists():
        raise RuntimeError(f"moto_server not found next to {sys.executable}; install moto[server]")
    return exe


def _answers_http(url: str) -> bool:
    try:
        with urllib.request.urlopen(url, timeout=1.0):
            return True
    except urllib.error.HTTPError:
        return True  # any HTTP status means the server is up
    except (OSError, ValueError):
        return False


def _log_tail(log: IO[bytes]) -> str:
    log.flush()
    log.seek(0)
    return log.read()[-4000:].decode(errors="replace")


def _stop(proc: subprocess.Popen[bytes]) -> None:
    if proc.poll() is not None:
        return
    try:
        os.killpg(proc.pid, signal.SIGTERM)
        proc.wait(timeout=10)
    except ProcessLookupError:
        return
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        proc.wait(timeout=10)


@contextmanager
def run_moto_server(*, startup_timeout: float = 30.0, attempts: int = 3) -> Iterator[str]:
    """Start ``moto_server`` on a free local port; yield its endpoint URL; stop it on exit.

    Sets no environment variables: callers pass the URL as ``endpoint_url`` and provide (dummy)
    credentials themselves.
    """
    exe = moto_server_executable()
    # The server logs every request; a file, unlike a pipe nobody reads, never fills up and blocks it.
    with tempfile.TemporaryFile() as log:
        for attempt in range(1, attempts + 1):
            port = free_port()
            endpoint = f"http://{_HOST}:{port}"
            proc = subprocess.Popen(
                [str(exe), "-H", _HOST, "-p", str(port)],
                stdin=subprocess.DEVNULL,
                stdout=log,
                stderr=subprocess.STDOUT,
                start_new_session=True,  # its own process group, so the whole group can be stopped
            )
            try:
                deadline = time.monotonic() + startup_timeout
                while proc.poll() is None and time.monotonic() < deadline:
                    if _answers_http(f"{endpoint}/moto-api/"):
                        break
                    time.sleep(0.1)
                else:
                    if proc.poll() is not None and attempt < attempts:
                        continue  # most likely lost the race for the port; try another one
                    raise RuntimeError(
                        f"moto_server did not come up on {endpoint} (exit code {proc.poll()}):\n"
                        + _log_tail(log)
                    )
                yield endpoint
                return
            finally:
                _stop(proc)
