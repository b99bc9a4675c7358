"""A stack of its own for the hostile corpus: the API and a real Celery worker as processes, on Redis,
PostgreSQL and the S3 server, with private temp dirs we can inspect, a loopback canary and a secret file."""

from __future__ import annotations

import os
import secrets
import shutil
import socket
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import psycopg
import pytest
import redis

from media_service.storage import S3Storage
from tests.support.procs import Proc, media_service, running, wait_http, wait_log
from tests.support.s3server import free_port, run_moto_server
from tests.support.xdist import redis_db

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
# Not the e2e stack's database: both stacks may be alive in one session, and each worker must only see its own.
REDIS_URL = os.environ.get("TEST_HOSTILE_REDIS_URL", f"redis://127.0.0.1:6379/{redis_db(8)}")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line("markers", "hostile: the hostile-input corpus (tests/hostile), on a real API and worker")


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    here = Path(__file__).parent
    for item in items:
        if here in Path(str(item.fspath)).parents:
            item.add_marker(pytest.mark.hostile)


@dataclass
class Canary:
    """A TCP listener on loopback: any connection at all (HTTP or not) is recorded."""

    url: str
    hits: list[bytes] = field(default_factory=list)


@contextmanager
def listening_canary() -> Iterator[Canary]:
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    server.bind(("127.0.0.1", 0))
    server.listen(16)
    server.settimeout(0.2)
    found = Canary(f"http://127.0.0.1:{server.getsockname()[1]}")
    stop = threading.Event()

    def serve() -> None:
        while not stop.is_set():
            try:
                conn, _ = server.accept()
            except (TimeoutError, OSError):
                continue
            with conn:
                conn.settimeout(1)
                try:
                    found.hits.append(conn.recv(4096) or b"<connected>")
                    conn.sendall(b"HTTP/1.0 404 Not Found\r\nContent-Length: 0\r\n\r\n")
                except OSError:
                    found.hits.append(b"<connected>")

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield found
    finally:
        stop.set()
        thread.join(timeout=2)
        server.close()


@pytest.fixture(scope="session")
def canary() -> Iterator[Canary]:
    """The corpus's canary: nothing may ever connect to it."""
    with listening_canary() as found:
        yield found


@dataclass(frozen=True)
class Secret:
    path: Path
    marker: str


@pytest.fixture(scope="session")
def secret(tmp_path_factory: pytest.TempPathFactory) -> Secret:
    """A file beside the service that no upload may read: its marker must appear nowhere."""
    marker = f"HOSTILE-SECRET-{secrets.token_hex(8)}"
    path = tmp_path_factory.mktemp("secret") / "secret.txt"
    path.write_text(f"{marker}\n")
    return Secret(path, marker)


@dataclass
class HostileStack:
    base_url: str
    env: dict[str, str]
    api: Proc
    worker: Proc
    storage: S3Storage
    tmp: Path  # TMPDIR of the API and the worker: upload copies and job work dirs live here
    data: Path
    logs: Path
    # What the worker keeps in its TMPDIR for its whole life (billiard's pymp-*, the metrics folder):
    # not per job, so not a leftover.
    tmp_baseline: frozenset[str] = frozenset()

    def tmp_leftovers(self) -> list[str]:
        return sorted(p.name for p in self.tmp.iterdir() if p.name not in self.tmp_baseline)


@pytest.fixture(scope="session")
def hostile_stack(tmp_path_factory: pytest.TempPathFactory) -> Iterator[HostileStack]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    db = f"media_hostile_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db}"')
    try:
        with run_moto_server() as s3_endpoint:
            logs = tmp_path_factory.mktemp("hostile-logs")
            tmp = tmp_path_factory.mktemp("hostile-tmp")
            data = tmp_path_factory.mktemp("hostile-data")
            bucket = f"hostile-{secrets.token_hex(4)}"
            port = free_port()
            env = {
                **os.environ,
                "TMPDIR": str(tmp),
                "MEDIA_DATA_DIR": str(data),
                "MEDIA_DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + f"/{db}",
                "MEDIA_BROKER_URL": REDIS_URL,
                "MEDIA_STORAGE_URL": f"s3://{bucket}/notes",
                "MEDIA_S3_ENDPOINT_URL": s3_endpoint,
                "MEDIA_API_KEYS": "alice-key=alice",
                "MEDIA_PORT": str(port),
                "MEDIA_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
                # The corpus is one client sending fast on purpose; tenancy limits are tested elsewhere.
                "MEDIA_RATE_LIMIT_PER_MINUTE": "100000",
                "MEDIA_UPLOAD_RATE_PER_MINUTE": "100000",
            }
            storage = S3Storage(bucket, "notes", endpoint_url=s3_endpoint)
            storage.ensure_bucket()
            with running("api", media_service("api"), env, logs) as api, \
                    running("worker", media_service("worker", "--queues", "image,video", "--concurrency", "2"),
                            env, logs) as worker:
                wait_http(f"http://127.0.0.1:{port}/healthz", api)
                wait_log(worker, "ready.")
                try:
                    yield HostileStack(f"http://127.0.0.1:{port}", env, api, worker, storage, tmp, data, logs,
                                       frozenset(p.name for p in tmp.iterdir()))
                finally:
                    if os.environ.get("HOSTILE_LOG_DIR"):  # keep the logs and the table (pytest prunes its tmp)
                        shutil.copytree(logs, os.environ["HOSTILE_LOG_DIR"], dirs_exist_ok=True)
    finally:
        redis.Redis.from_url(REDIS_URL).flushdb()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db}" WITH (FORCE)')
