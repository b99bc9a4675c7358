"""Thin tasks: take an id, hand it to media_service.jobs, translate the outcome for Celery."""

from __future__ import annotations

import logging

from celery import Task

from media_service.jobs import process_media
from media_service.queue import TASK_FOR_KIND
from workers.app import app, state

log = logging.getLogger("workers.tasks")


def _run(task: Task, media_id: str) -> str:
    ctx = state().context
    outcome = process_media(ctx, media_id)
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
