"""Metrics wired to the service's own parts: storage operations counted on error, and the queue statistics
(database and broker) computed when /metrics is scraped. Used by the entry points (API factory, worker)."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, BinaryIO, TypeVar

from media_service import metrics
from media_service.db import MediaRepo
from media_service.errors import MediaError
from media_service.queue import QUEUE_FOR_KIND
from media_service.storage import Storage, StoredObject

T = TypeVar("T")

# kombu's Redis transport keeps a list per queue, plus one per priority step ("<queue>\x06\x16<n>").
REDIS_PRIORITY_SEP = "\x06\x16"
REDIS_PRIORITY_STEPS = (3, 6, 9)


def _code(exc: BaseException) -> str:
    return exc.code if isinstance(exc, MediaError) else type(exc).__name__


class InstrumentedStorage:
    """A Storage that counts every failed operation (media_storage_errors_total{operation, code})."""

    def __init__(self, inner: Storage) -> None:
        self.inner = inner

    def __repr__(self) -> str:
        return f"InstrumentedStorage({self.inner!r})"

    def __getattr__(self, name: str) -> Any:  # backend-specific extras (ensure_bucket, root, …)
        return getattr(self.inner, name)

    def _call(self, operation: str, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        try:
            return fn(*args, **kwargs)
        except Exception as exc:
            if not isinstance(exc, ValueError):  # a refused key is a caller's bug, not a storage error
                metrics.storage_error(operation, _code(exc))
            raise

    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject:
        return self._call("put", self.inner.put_file, key, path, content_type)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str) -> StoredObject:
        return self._call("put", self.inner.put_stream, key, stream, content_type)

    def get_to_file(self, key: str, dest: Path) -> None:
        self._call("get", self.inner.get_to_file, key, dest)

    def iter_bytes(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        chunks = self._call("get", self.inner.iter_bytes, key, chunk_size)
        try:
            yield from chunks
        except Exception as exc:
            if not isinstance(exc, ValueError):
                metrics.storage_error("get", _code(exc))
            raise

    def stat(self, key: str) -> StoredObject | None:
        return self._call("stat", self.inner.stat, key)

    def delete(self, key: str) -> None:
        self._call("delete", self.inner.delete, key)

    def delete_prefix(self, prefix: str) -> int:
        return self._call("delete", self.inner.delete_prefix, prefix)

    def list_keys(self, prefix: str) -> list[str]:
        return self._call("list", self.inner.list_keys, prefix)

    def url(self, key: str, *, expires_in: int, content_type: str | None = None) -> str:
        return self._call("url", self.inner.url, key, expires_in=expires_in, content_type=content_type)

    def check(self) -> None:
        self._call("check", self.inner.check)


def unwrap(storage: Storage) -> Storage:
    return storage.inner if isinstance(storage, InstrumentedStorage) else storage


class RedisQueueLengths:
    """LLEN of each queue's lists on a Redis broker (one short-timeout client, made on first use)."""

    def __init__(self, broker_url: str) -> None:
        self.broker_url = broker_url
        self._client: Any = None

    def __call__(self, queue: str) -> int:
        if self._client is None:
            import redis

            self._client = redis.Redis.from_url(self.broker_url, socket_timeout=1, socket_connect_timeout=1)
        names = [queue, *(f"{queue}{REDIS_PRIORITY_SEP}{step}" for step in REDIS_PRIORITY_STEPS)]
        pipe = self._client.pipeline(transaction=False)
        for name in names:
            pipe.llen(name)
        return int(sum(pipe.execute()))


def queue_stats_source(repo: MediaRepo, broker_url: str) -> Callable[[], list[metrics.QueueStats]]:
    """What media_queue_* gauges report: waiting records and the oldest one's age from the database (the
    ledger), and the broker's own list length when the broker is Redis."""
    lengths = RedisQueueLengths(broker_url) if broker_url.startswith(("redis://", "rediss://")) else None

    def source() -> list[metrics.QueueStats]:
        now = datetime.now(UTC)
        out = []
        for kind, queue in QUEUE_FOR_KIND.items():
            waiting, oldest = repo.waiting_stats(kind)
            age = 0.0
            if oldest is not None:
                oldest = oldest if oldest.tzinfo else oldest.replace(tzinfo=UTC)  # SQLite keeps naive times
                age = max(0.0, (now - oldest).total_seconds())
            length: int | None = None
            if lengths is not None:
                try:
                    length = lengths(queue)
                except Exception:  # the broker is down: the database's figures still stand
                    length = None
            out.append(metrics.QueueStats(queue, waiting, age, length))
        return out

    return source
