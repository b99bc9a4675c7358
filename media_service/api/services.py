"""What the API needs, built once by the app factory from settings."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass, field

from media_service.api.views import HlsSigner
from media_service.config import Settings
from media_service.db import Database, KeyRepo, MediaRepo, Quota, UsageRepo
from media_service.db.idempotency import IdempotencyRepo
from media_service.pack_store import LiveRegistry, PackStore
from media_service.queue import JobQueue, make_celery
from media_service.ratelimit import Limiter, make_limiter
from media_service.storage import Storage, open_storage

KEY_CACHE_SECONDS = 10.0  # how long a revoked database key may still be accepted by a running API


@dataclass
class KeyLookup:
    """Owner by key hash: the configured hashes, then the database's keys (briefly cached)."""

    configured: dict[str, str]
    keys: KeyRepo
    ttl: float = KEY_CACHE_SECONDS
    _cache: dict[str, tuple[str | None, float]] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock)

    def owner(self, key_hash: str) -> str | None:
        configured = self.configured.get(key_hash)
        if configured is not None:
            return configured
        now = time.monotonic()
        with self._lock:
            hit = self._cache.get(key_hash)
        if hit is not None and now - hit[1] < self.ttl:
            return hit[0]
        owner = self.keys.owner_of(key_hash)
        with self._lock:
            if len(self._cache) > 10_000:
                self._cache.clear()
            self._cache[key_hash] = (owner, now)
        return owner


@dataclass
class Services:
    settings: Settings
    db: Database
    repo: MediaRepo
    storage: Storage
    packs: LiveRegistry
    queue: JobQueue
    keys: KeyLookup
    hls: HlsSigner
    limiter: Limiter
    usage: UsageRepo
    idempotency: IdempotencyRepo

    @property
    def quota(self) -> Quota:
        return Quota(self.settings.quota_bytes_per_day, self.settings.quota_video_seconds_per_day)


def live_registry(settings: Settings, storage: Storage) -> LiveRegistry:
    return LiveRegistry({"looks": settings.filters_dirs, "stickers": settings.stickers_dirs,
                         "tracks": settings.music_dirs}, PackStore(storage), settings.data_dir / "packs-cache",
                        settings.packs_refresh_seconds)


def build_services(settings: Settings) -> Services:
    db = Database(settings.database_url)
    db.create_all()
    storage = open_storage(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                           public_base_url=settings.public_base_url, signing_secret=settings.signing_key)
    packs = live_registry(settings, storage)
    return Services(settings, db, MediaRepo(db), storage, packs, JobQueue(make_celery(settings)),
                    KeyLookup(settings.key_owners, KeyRepo(db)),
                    HlsSigner(settings.public_base_url, settings.signing_key), make_limiter(settings.broker_url),
                    UsageRepo(db), IdempotencyRepo(db))
