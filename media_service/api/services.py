"""What the API needs, built once by the app factory from settings."""

from __future__ import annotations

from dataclasses import dataclass

from media_service.api.views import HlsSigner
from media_service.config import Settings
from media_service.db import Database, MediaRepo
from media_service.pack_store import LiveRegistry, PackStore
from media_service.queue import JobQueue, make_celery
from media_service.storage import Storage, open_storage


@dataclass
class Services:
    settings: Settings
    db: Database
    repo: MediaRepo
    storage: Storage
    packs: LiveRegistry
    queue: JobQueue
    key_owners: dict[str, str]
    hls: HlsSigner


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
                    settings.key_owners, HlsSigner(settings.public_base_url, settings.signing_key))
