"""Thin tasks: take an id, hand it to media_service.jobs, translate the outcome for Celery."""

from __future__ import annotations

import logging

from celery import Task

from media_service.errors import DatabaseUnavailable
from media_service.jobs import process_media
from media_service.queue import TASK_FOR_KIND
from workers import reconcile  # noqa: F401  (its signal handlers start the reconciler in the main process)
from workers.app import app, state

log = logging.getLogger("workers.tasks")


# A job that could not even reach the database (down, restarting) is tried again later, not dropped:
# with backoff up to 30 s, for about a quarter of an hour.
DB_RETRIES = 30


def _run(task: Task, media_id: str) -> str:
    ctx = state().context
    try:
        outcome = process_media(ctx, media_id)
    except DatabaseUnavailable as exc:
        retries = task.request.retries
        log.warning("media %s: database unavailable, retrying (%d): %s", media_id, retries, exc.detail)
        raise task.retry(countdown=min(30, 2 ** retries), max_retries=DB_RETRIES) from None
    if outcome.status == "retry":
        retries = task.request.retries
        raise task.retry(countdown=min(60, 2 ** retries * 2), max_retries=ctx.max_attempts)
    return outcome.status


@app.task(name=TASK_FOR_KIND["image"], bind=True)
def process_image(self: Task, media_id: str) -> str:
    return _run(self, media_id)


@app.task(name=TASK_FOR_KIND["video"], bind=True)
def process_video(self: Task, media_id: str) -> str:
    return _run(self, media_id)
