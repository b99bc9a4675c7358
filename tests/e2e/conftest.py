"""The real thing: API and a Celery worker as processes, on Redis, PostgreSQL and the S3 server."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from dataclasses import dataclass

import psycopg
import pytest
import redis

from media_service.storage import S3Storage
from tests.support.packs import write_music_pack
from tests.support.procs import Proc, media_service, running, wait_http, wait_log
from tests.support.s3server import free_port, run_moto_server
from tests.support.xdist import redis_db

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REDIS_URL = os.environ.get("TEST_REDIS_URL", f"redis://127.0.0.1:6379/{redis_db(7)}")

pytestmark = pytest.mark.e2e


@dataclass
class Stack:
    base_url: str
    env: dict[str, str]
    api: Proc
    worker: Proc
    storage: S3Storage
    bucket: str
    worker_metrics_url: str = ""  # the worker's /metrics, /healthz, /readyz (MEDIA_WORKER_METRICS_PORT)


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    name = f"media_e2e_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        yield PG_ADMIN.rsplit("/", 1)[0] + f"/{name}"
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


@pytest.fixture(scope="session")
def stack(s3_endpoint: str, pg_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logs = tmp_path_factory.mktemp("logs")
    bucket = f"notes-{secrets.token_hex(4)}"
    port = free_port()
    metrics_port = free_port()
    env = {
        **os.environ,
        "MEDIA_DATA_DIR": str(tmp_path_factory.mktemp("data")),
        "MEDIA_DATABASE_URL": pg_url,
        "MEDIA_BROKER_URL": REDIS_URL,
        "MEDIA_STORAGE_URL": f"s3://{bucket}/notes",
        "MEDIA_S3_ENDPOINT_URL": s3_endpoint,
        "MEDIA_API_KEYS": "alice-key=alice,bob-key=bob",
        # The suites upload in bursts and poll; the limits themselves are tested in tests/api and tests/unit.
        "MEDIA_UPLOAD_RATE_PER_MINUTE": "2000",
        "MEDIA_RATE_LIMIT_PER_MINUTE": "20000",
        "MEDIA_PORT": str(port),
        "MEDIA_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "MEDIA_MUSIC_DIRS": str(write_music_pack(tmp_path_factory.mktemp("music"), frequency=2500, seconds=6)),
        "MEDIA_PACKS_REFRESH_SECONDS": "1",
        "MEDIA_LOG_FORMAT": "json",  # the worker's log file is read line by line as JSON (test_observability_e2e)
        "MEDIA_WORKER_METRICS_PORT": str(metrics_port),
    }
    storage = S3Storage(bucket, "notes", endpoint_url=s3_endpoint)
    storage.ensure_bucket()
    with running("api", media_service("api"), env, logs) as api, \
            running("worker", media_service("worker", "--queues", "image,video", "--concurrency", "2"), env,
                    logs) as worker:
        wait_http(f"http://127.0.0.1:{port}/healthz", api)
        wait_log(worker, "ready.")
        yield Stack(f"http://127.0.0.1:{port}", env, api, worker, storage, bucket,
                    f"http://127.0.0.1:{metrics_port}")
        print("--- api log ---\n" + api.tail() + "\n--- worker log ---\n" + worker.tail())
    redis.Redis.from_url(REDIS_URL).flushdb()
