"""Starts the reconciler in the worker's main process (never in the pool processes)."""

from __future__ import annotations

from datetime import timedelta

from celery.signals import worker_ready, worker_shutdown

from media_service.db import Database
from media_service.queue import JobQueue
from media_service.reconcile import Reconciler
from workers.app import app, settings

_running: list[Reconciler] = []


@worker_ready.connect
def _start(**_kwargs: object) -> None:
    if settings.reconcile_seconds <= 0 or _running:
        return
    queue = JobQueue(app)
    reconciler = Reconciler(Database(settings.database_url), queue.enqueue, settings.reconcile_seconds,
                            timedelta(seconds=settings.stuck_queued_seconds),
                            timedelta(seconds=settings.stuck_processing_seconds))
    reconciler.start()
    _running.append(reconciler)


@worker_shutdown.connect
def _stop(**_kwargs: object) -> None:
    for reconciler in _running:
        reconciler.stop()
