"""Background loops of the worker's main process (never the pool processes): the reconciler and the
webhook deliverer."""

from __future__ import annotations

from datetime import timedelta

from celery.signals import worker_ready, worker_shutdown

from media_service.db import Database
from media_service.db.outbox import WebhookRepo
from media_service.queue import JobQueue
from media_service.reconcile import Reconciler
from media_service.webhooks import Deliverer
from workers.app import app, settings

_running: list[Reconciler | Deliverer] = []


@worker_ready.connect
def _start(**_kwargs: object) -> None:
    if _running:
        return
    db = Database(settings.database_url)
    if settings.reconcile_seconds > 0:
        queue = JobQueue(app)
        _running.append(Reconciler(db, queue.enqueue, settings.reconcile_seconds,
                                   timedelta(seconds=settings.stuck_queued_seconds),
                                   timedelta(seconds=settings.stuck_processing_seconds)))
    _running.append(Deliverer(db, WebhookRepo(db).endpoint, interval=1.0, backoff=settings.webhook_backoff,
                              allow_private=settings.webhook_allow_private))
    for loop in _running:
        loop.start()


@worker_shutdown.connect
def _stop(**_kwargs: object) -> None:
    for reconciler in _running:
        reconciler.stop()
