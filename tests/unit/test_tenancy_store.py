"""Rate-limit buckets (in memory and in a real Redis) and the quota's atomic reservation (SQLite and a
real PostgreSQL, with uploads racing)."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
import threading
from collections.abc import Iterator
from pathlib import Path

import psycopg
import pytest
import redis

from media_service.db import Database, KeyRepo, Quota, UsageRepo
from media_service.db.tenancy import seconds_to_midnight
from media_service.ratelimit import MemoryLimiter, RedisLimiter

REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/7")
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
REPO = Path(__file__).resolve().parents[2]


def test_memory_bucket_refills_at_its_rate() -> None:
    now = [100.0]
    limiter = MemoryLimiter(clock=lambda: now[0])
    assert [limiter.take("k", 60) for _ in range(60)] == [0.0] * 60
    assert limiter.take("k", 60) == pytest.approx(1.0)  # one token a second
    now[0] += 2.5
    assert limiter.take("k", 60) == 0.0 and limiter.take("k", 60) == 0.0
    assert limiter.take("k", 60) == pytest.approx(0.5)
    assert limiter.take("other", 60) == 0.0


def test_redis_bucket_is_shared_and_atomic() -> None:
    prefix = f"test:{secrets.token_hex(4)}:"
    a, b = RedisLimiter(REDIS_URL, prefix), RedisLimiter(REDIS_URL, prefix)  # two API processes
    results: list[float] = []
    lock = threading.Lock()

    def hammer(limiter: RedisLimiter) -> None:
        for _ in range(25):
            wait = limiter.take("k", 30)
            with lock:
                results.append(wait)

    threads = [threading.Thread(target=hammer, args=(lim,)) for lim in (a, b, a, b)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    allowed = sum(1 for w in results if w == 0)
    assert 30 <= allowed <= 31  # the bucket's depth, plus at most what refilled during the test
    assert all(0 < w <= 2.1 for w in results if w)
    assert redis.Redis.from_url(REDIS_URL).ttl(prefix + "k") > 0  # idle buckets expire


def test_redis_down_fails_open() -> None:
    limiter = RedisLimiter("redis://127.0.0.1:1/0")
    assert limiter.take("k", 1) == 0.0 and limiter.take("k", 1) == 0.0


@pytest.fixture(params=["sqlite", "postgresql"])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[Database]:
    if request.param == "sqlite":
        db = Database(f"sqlite:///{tmp_path / 'q.db'}")
        db.create_all()
        yield db
        return
    name = f"media_quota_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    try:
        db = Database(PG_ADMIN.rsplit("/", 1)[0] + f"/{name}")
        db.create_all()
        yield db
        db.engine.dispose()
    finally:
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')


def test_racing_uploads_cannot_both_squeeze_under_the_quota(database: Database) -> None:
    usage = UsageRepo(database)
    quota = Quota(bytes_per_day=1000, video_seconds_per_day=100)
    outcomes: list[str | None] = []
    barrier = threading.Barrier(8)

    def one() -> None:
        barrier.wait()
        outcomes.append(usage.reserve("alice", 300, 10.0, quota, day="2026-11-29"))

    threads = [threading.Thread(target=one) for _ in range(8)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    assert sum(1 for o in outcomes if o) == 3  # 3 × 300 ≤ 1000 < 4 × 300
    used = usage.get("alice", "2026-11-29")
    assert (used.bytes, used.video_seconds, used.uploads) == (900, 30.0, 3)
    usage.release("alice", 300, 10.0, "2026-11-29")
    assert usage.get("alice", "2026-11-29").bytes == 600
    assert usage.reserve("alice", 10, 95.0, quota, day="2026-11-29") is None  # seconds are capped too
    assert usage.get("bob", "2026-11-29").bytes == 0


def test_keys_are_listed_and_revoked(database: Database) -> None:
    keys = KeyRepo(database)
    key, info = keys.create("alice", "ios")
    assert keys.owner_of(hash_of(key)) == "alice"
    assert [(k.id, k.owner, k.name) for k in keys.list()] == [(info.id, "alice", "ios")]
    assert keys.revoke(info.id) and not keys.revoke(info.id)
    assert keys.owner_of(hash_of(key)) is None and keys.list("alice")[0].revoked_at is not None


def hash_of(key: str) -> str:
    from media_service.db import hash_key

    return hash_key(key)


def test_seconds_to_midnight() -> None:
    from datetime import UTC, datetime

    assert seconds_to_midnight(datetime(2026, 11, 29, 23, 59, 30, tzinfo=UTC)) == 31


def test_keys_command(tmp_path: Path) -> None:
    env = {**os.environ, "MEDIA_DATA_DIR": str(tmp_path)}
    cli = [sys.executable, "-m", "media_service.cli", "keys"]
    made = subprocess.run([*cli, "create", "alice", "--name", "web"], env=env, capture_output=True, text=True,
                          timeout=60, check=True)
    key = made.stdout.strip()
    assert key.startswith("nm_") and "shown once" in made.stderr
    listed = subprocess.run([*cli, "list"], env=env, capture_output=True, text=True, timeout=60, check=True).stdout
    assert "alice" in listed and "web" in listed and "active" in listed and key not in listed
    key_id = listed.split()[0]
    assert subprocess.run([*cli, "revoke", key_id], env=env, capture_output=True, timeout=60).returncode == 0
    assert subprocess.run([*cli, "revoke", key_id], env=env, capture_output=True, timeout=60).returncode == 1
    hashed = subprocess.run([*cli, "hash", "secret", "bob"], env=env, capture_output=True, text=True, timeout=60,
                            check=True).stdout.strip()
    assert hashed == "sha256:2bb80d537b1da3e38bd30361aa855686bde0eacd7162fef6a25fe97bf527a25b=bob"


def test_idempotency_keys_on_both_databases(database: Database) -> None:
    """On PostgreSQL the driver reports a row count for ON CONFLICT DO NOTHING even when nothing was
    inserted: the second request must still see the first one's claim."""
    from media_service.db.idempotency import IdempotencyRepo, Seen

    repo = IdempotencyRepo(database)
    assert repo.begin("alice", "k", "fp") is None
    assert repo.begin("alice", "k", "fp") == Seen("fp", None)  # the first still running
    repo.finish("alice", "k", "m1")
    assert repo.begin("alice", "k", "fp") == Seen("fp", "m1")
    assert repo.begin("alice", "k", "other") == Seen("fp", "m1")  # the caller refuses the other body
    assert repo.begin("bob", "k", "fp") is None  # keys are per owner
    repo.abandon("bob", "k")
    assert repo.begin("bob", "k", "fp2") is None
