"""Worker bootstrap: settings are read here, once per process, and handed to the library as values."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from functools import cache

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import worker_process_init

from media_service.config import Settings, load_settings
from media_service.db import Database, MediaRepo
from media_service.jobs import JobContext
from media_service.pack_store import LiveRegistry, PackStore
from media_service.queue import make_celery
from media_service.storage import open_storage

settings = load_settings()
app: Celery = make_celery(settings, "notes-media-worker")
app.conf.include = ["workers.tasks"]


@dataclass
class WorkerState:
    settings: Settings
    context: JobContext


@cache
def state() -> WorkerState:
    """Per process: each pool process opens its own database connections and storage client."""
    db = Database(settings.database_url)
    storage = open_storage(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                           public_base_url=settings.public_base_url, signing_secret=settings.signing_key)
    packs = LiveRegistry({"looks": settings.filters_dirs, "stickers": settings.stickers_dirs,
                          "tracks": settings.music_dirs}, PackStore(storage), settings.data_dir / "packs-cache",
                         settings.packs_refresh_seconds)
    return WorkerState(settings, JobContext(MediaRepo(db), storage, packs.current, settings.limits,
                                            settings.max_attempts, timeout_errors=(SoftTimeLimitExceeded,)))


@worker_process_init.connect
def _init_process(**_kwargs: object) -> None:
    logging.getLogger("media_service").setLevel(logging.INFO)
    state()
