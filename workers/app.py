"""Worker bootstrap: settings are read here, once per process, and handed to the library as values."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass
from functools import cache
from typing import Any

from celery import Celery
from celery.exceptions import SoftTimeLimitExceeded
from celery.signals import (
    setup_logging,
    task_postrun,
    task_prerun,
    worker_init,
    worker_process_init,
    worker_process_shutdown,
    worker_ready,
    worker_shutdown,
)

from media_service import logs, metrics
from media_service.config import Settings, load_settings
from media_service.db import Database, MediaRepo
from media_service.instrument import InstrumentedStorage
from media_service.jobs import JobContext
from media_service.pack_store import LiveRegistry, PackStore
from media_service.pipeline.pieces import cores_available
from media_service.queue import JobQueue, make_celery
from media_service.storage import Storage, open_storage
from workers.observe import MetricsServer, WorkerProbe

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
    storage = _open_storage()
    packs = LiveRegistry({"looks": settings.filters_dirs, "stickers": settings.stickers_dirs,
                          "tracks": settings.music_dirs}, PackStore(storage), settings.data_dir / "packs-cache",
                         settings.packs_refresh_seconds)
    return WorkerState(settings, JobContext(MediaRepo(db), storage, packs.current, settings.limits,
                                            settings.max_attempts, timeout_errors=(SoftTimeLimitExceeded,),
                                            lease_seconds=settings.processing_lease_seconds,
                                            video_pieces=settings.video_pieces or cores_available(),
                                            video_pieces_min_seconds=settings.video_pieces_min_seconds))


def _open_storage() -> Storage:
    return InstrumentedStorage(open_storage(settings.storage_url, s3_endpoint_url=settings.s3_endpoint_url,
                                            public_base_url=settings.public_base_url,
                                            signing_secret=settings.signing_key))


@setup_logging.connect
def _setup_logging(**_kwargs: object) -> None:
    """Connected, so Celery leaves logging to us: one handler on the root logger (JSON lines by default)."""
    logs.configure_logging(settings.log_format, settings.log_level)


@worker_process_init.connect
def _init_process(**_kwargs: object) -> None:
    logging.getLogger("media_service").setLevel(settings.log_level)
    state()


_task_log_tokens: dict[str, Any] = {}


@task_prerun.connect
def _bind_task_log_context(task_id: str | None = None, args: Any = None, **_kwargs: object) -> None:
    """Celery's own lines about a task (received, succeeded, retry) carry its media id too."""
    if task_id and args and isinstance(args[0], str):
        _task_log_tokens[task_id] = logs.push(media_id=args[0])


@task_postrun.connect
def _unbind_task_log_context(task_id: str | None = None, **_kwargs: object) -> None:
    token = _task_log_tokens.pop(task_id or "", None)
    if token is not None:
        logs.pop(token)


@worker_process_shutdown.connect
def _process_gone(**_kwargs: object) -> None:
    # Its in-progress gauge must not outlive it (a killed process is reaped at the next scrape instead).
    if metrics.multiprocess_dir():
        from media_service import multiproc

        multiproc.reap_dead()
        from prometheus_client import multiprocess

        multiprocess.mark_process_dead(os.getpid())  # type: ignore[no-untyped-call]


def _readiness_checks() -> dict[str, Any]:
    """Checks for /readyz, run in the main process: each opens and closes its own connections, so nothing is
    held open when Celery forks a pool process."""

    def database() -> None:
        db = Database(settings.database_url)
        try:
            db.check()
        finally:
            db.engine.dispose()

    storage: list[Storage] = []

    def store() -> None:
        if not storage:
            storage.append(_open_storage())
        storage[0].check()

    return {"database": database, "broker": JobQueue(app).check, "storage": store}


class _Observability:
    probe: WorkerProbe | None = None
    server: MetricsServer | None = None


@worker_init.connect
def _start_metrics_server(**_kwargs: object) -> None:
    """MEDIA_WORKER_METRICS_PORT: the main process serves /metrics, /healthz and /readyz there."""
    if not settings.worker_metrics_port:
        return
    log = logging.getLogger("workers.app")
    if not metrics.multiprocess_dir():
        log.warning("PROMETHEUS_MULTIPROC_DIR is not set (start workers with `media-service worker`): "
                    "/metrics will not see the pool processes' counts")
    _Observability.probe = WorkerProbe(_readiness_checks())
    try:
        _Observability.server = MetricsServer(settings.worker_metrics_host, settings.worker_metrics_port,
                                              _Observability.probe).start()
    except OSError as exc:
        log.error("worker metrics server could not listen on %s:%d: %s", settings.worker_metrics_host,
                  settings.worker_metrics_port, exc)
        return
    log.info("worker metrics on http://%s:%d/metrics (and /healthz, /readyz)", settings.worker_metrics_host,
             _Observability.server.port)


@worker_ready.connect
def _consuming(**_kwargs: object) -> None:
    if _Observability.probe is not None:
        _Observability.probe.consuming = True


@worker_shutdown.connect
def _stop_metrics_server(**_kwargs: object) -> None:
    if _Observability.probe is not None:
        _Observability.probe.consuming = False
    if _Observability.server is not None:
        _Observability.server.stop()
        _Observability.server = None
