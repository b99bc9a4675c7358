"""The /demo page in a real browser: Debian's chromium driven by Playwright, against the real stack (API and a
Celery worker as processes, on Redis, PostgreSQL and the S3 server), as in tests/e2e.

The stack is the e2e one with its own Redis database: a pytest worker that runs tests/e2e too has both stacks
up at once (session fixtures of two folders), and two Celery workers on one Redis database would take each
other's jobs."""

from __future__ import annotations

import os
import secrets
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis

from media_service.storage import S3Storage
from tests.e2e.conftest import Stack, pg_url, s3_endpoint  # noqa: F401 (fixtures, re-exported for this folder)
from tests.support.packs import write_music_pack
from tests.support.procs import media_service, running, wait_http, wait_log
from tests.support.s3server import free_port
from tests.support.xdist import redis_db

# e2e stacks use 7, 9…, the hostile ones 8, 10…: 11, 13… are free.
REDIS_URL = os.environ.get("TEST_BROWSER_REDIS_URL", f"redis://127.0.0.1:6379/{redis_db(11)}")
CHROMIUM = Path("/usr/bin/chromium")


@pytest.fixture(scope="session")
def browser_stack(s3_endpoint: str, pg_url: str, tmp_path_factory: pytest.TempPathFactory  # noqa: F811
                  ) -> Iterator[Stack]:
    redis.Redis.from_url(REDIS_URL).flushdb()
    for name in ("AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY"):
        os.environ.setdefault(name, "test")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    logs = tmp_path_factory.mktemp("browser-logs")
    bucket = f"demo-{secrets.token_hex(4)}"
    port = free_port()
    env = {
        **os.environ,
        "MEDIA_DATA_DIR": str(tmp_path_factory.mktemp("browser-data")),
        "MEDIA_DATABASE_URL": pg_url,
        "MEDIA_BROKER_URL": REDIS_URL,
        "MEDIA_STORAGE_URL": f"s3://{bucket}/notes",
        "MEDIA_S3_ENDPOINT_URL": s3_endpoint,
        "MEDIA_API_KEYS": "alice-key=alice",
        "MEDIA_PORT": str(port),
        "MEDIA_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}",
        "MEDIA_MUSIC_DIRS": str(write_music_pack(tmp_path_factory.mktemp("browser-music"), seconds=6)),
    }
    storage = S3Storage(bucket, "notes", endpoint_url=s3_endpoint)
    storage.ensure_bucket()
    with running("api", media_service("api"), env, logs) as api, \
            running("worker", media_service("worker", "--queues", "image,video", "--concurrency", "2"), env,
                    logs) as worker:
        wait_http(f"http://127.0.0.1:{port}/healthz", api)
        wait_log(worker, "ready.")
        yield Stack(f"http://127.0.0.1:{port}", env, api, worker, storage, bucket)
        print("--- api log ---\n" + api.tail() + "\n--- worker log ---\n" + worker.tail())
    redis.Redis.from_url(REDIS_URL).flushdb()


@pytest.fixture(scope="session")
def chromium() -> Iterator[Any]:
    """Debian's chromium, headless; Playwright never downloads a browser here."""
    if not CHROMIUM.exists():
        pytest.skip(f"{CHROMIUM} is not installed (apt-get install -y chromium; scripts/setup --dev does)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=str(CHROMIUM), headless=True)
        try:
            yield browser
        finally:
            browser.close()


@pytest.fixture(scope="session")
def artifacts(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """Screenshots go here: $TEST_ARTIFACTS_DIR (CI can keep it) or the session's temp folder."""
    folder = Path(os.environ.get("TEST_ARTIFACTS_DIR") or tmp_path_factory.getbasetemp() / "artifacts")
    folder.mkdir(parents=True, exist_ok=True)
    return folder
