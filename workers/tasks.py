"""Thin tasks: take an id, hand it to media_service.jobs, translate the outcome for Celery."""

from __future__ import annotations

import logging
from dataclasses import replace
from functools import cache
from typing import Any

from celery import Task, chord

from media_service.covers import CoverContext, give_up_cover, render_cover
from media_service.errors import DatabaseUnavailable, InternalError, MediaError
from media_service.jobs import JobContext, process_media
from media_service.queue import COVER_TASK, JOIN_TASK, PART_TASK, SPLIT_FAILED_TASK, TASK_FOR_KIND, VIDEO_QUEUE
from media_service.segmented import Split, abandon_with, join_parts, render_part
from workers import reconcile  # noqa: F401  (its signal handlers start the reconciler in the main process)
from workers.app import app, settings, state

log = logging.getLogger("workers.tasks")


# A job that could not even reach the database (down, restarting) is tried again later, not dropped:
# with backoff up to 30 s, for about a quarter of an hour.
DB_RETRIES = 30
# A duplicate message of a running job looks again every half lease for this many times (a 15 min video at
# the default lease of 120 s is 15 looks); then it is dropped: the live attempt and the reconciler own it.
BUSY_LOOKS = 60
# A join that finds a part's result in the chord but not its objects in storage looks again this often, this
# many times, before it calls the split failed (it should not happen: parts write done.json before returning).
JOIN_LOOK_SECONDS, JOIN_LOOKS = 5, 24


@cache
def _context() -> JobContext:
    """The process's job context, with the segmented path on when there is a result backend for chords."""
    ctx = state().context
    if not settings.result_backend or settings.segment_min_seconds <= 0:
        return ctx
    return replace(ctx, segment_seconds=settings.segment_seconds, segment_min_seconds=settings.segment_min_seconds,
                   dispatch_split=_dispatch_split)


def _dispatch_split(split: Split) -> None:
    """Every part on the video queue ahead of new jobs (priority 0: the record already shows `processing`),
    the join as the chord's callback, and the errback for a part that Celery itself failed (hard time limit,
    database retries exhausted)."""
    data = split.to_dict()
    header = [video_part.signature((data, part), queue=VIDEO_QUEUE, priority=0) for part in split.plan.parts]
    body = video_join.signature((data,), queue=VIDEO_QUEUE, priority=0)
    body.on_error(video_split_failed.si(data).set(queue=VIDEO_QUEUE, priority=0))
    chord(header, body).apply_async()


def _requeue_video(media_id: str) -> None:
    """A failed split was handed back (record queued again): a fresh process_video claims the next attempt."""
    app.send_task(TASK_FOR_KIND["video"], args=[media_id], queue=VIDEO_QUEUE, countdown=2, ignore_result=True)


def _run(task: Task, media_id: str) -> str:
    ctx = _context()
    try:
        outcome = process_media(ctx, media_id)
    except DatabaseUnavailable as exc:
        retries = task.request.retries
        log.warning("media %s: database unavailable, retrying (%d): %s", media_id, retries, exc.detail)
        raise task.retry(countdown=min(30, 2 ** retries), max_retries=DB_RETRIES) from None
    if outcome.status == "retry":
        retries = task.request.retries
        raise task.retry(countdown=min(60, 2 ** retries * 2), max_retries=ctx.max_attempts)
    if outcome.status == "busy":
        # A duplicate of a job that is running: look again after about a lease; it ends as "skipped" once that
        # attempt publishes, or takes over if its worker dies (no heartbeat for a lease).
        raise task.retry(countdown=max(1.0, ctx.lease_seconds / 2), max_retries=BUSY_LOOKS)
    return outcome.status


@app.task(name=TASK_FOR_KIND["image"], bind=True)
def process_image(self: Task, media_id: str) -> str:
    return _run(self, media_id)


@app.task(name=TASK_FOR_KIND["video"], bind=True)
def process_video(self: Task, media_id: str) -> str:
    return _run(self, media_id)


@app.task(name=PART_TASK, bind=True, ignore_result=False)
def video_part(self: Task, split: dict[str, Any], part: str) -> dict[str, Any]:
    try:
        return render_part(_context(), split, part)
    except DatabaseUnavailable:
        raise self.retry(countdown=min(30, 2 ** self.request.retries), max_retries=DB_RETRIES) from None


@app.task(name=JOIN_TASK, bind=True)
def video_join(self: Task, results: list[Any], split: dict[str, Any]) -> str:
    retries = self.request.retries
    try:
        outcome = join_parts(_context(), split, results, last_look=retries >= JOIN_LOOKS)
    except DatabaseUnavailable:
        raise self.retry(countdown=min(30, 2 ** retries), max_retries=DB_RETRIES + JOIN_LOOKS) from None
    if outcome.status == "wait":
        raise self.retry(countdown=JOIN_LOOK_SECONDS, max_retries=DB_RETRIES + JOIN_LOOKS)
    if outcome.status == "retry":
        _requeue_video(split["media_id"])
    return outcome.status


@app.task(name=SPLIT_FAILED_TASK, bind=True)
def video_split_failed(self: Task, split: dict[str, Any]) -> str:
    """A part failed in Celery's own terms (it was killed at its hard time limit, or could not reach the
    database for its whole retry budget), so the chord will never call the join."""
    outcome = abandon_with(_context(), Split.from_dict(split), InternalError(detail="a part failed in Celery"))
    if outcome.status == "retry":
        _requeue_video(split["media_id"])
    return outcome.status


COVER_RETRIES = 5


@app.task(name=COVER_TASK, bind=True)
def set_cover(self: Task, media_id: str, time: float) -> str:
    """A new poster for a ready video at ``time`` (PUT /v1/media/{id}/cover)."""
    ctx = _context()
    try:
        return render_cover(CoverContext(ctx.repo, ctx.storage, ctx.tmp_root), media_id, time)
    except DatabaseUnavailable:
        raise self.retry(countdown=min(30, 2 ** self.request.retries), max_retries=DB_RETRIES) from None
    except MediaError as err:
        if err.retryable and self.request.retries < COVER_RETRIES:
            raise self.retry(countdown=min(30, 2 ** self.request.retries), max_retries=COVER_RETRIES) from None
        log.warning("media %s: no poster at %.3f s: %s (%s)", media_id, time, err.code, err.detail or err.message)
        give_up_cover(ctx.repo, media_id, time)
        return "failed"
