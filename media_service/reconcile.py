"""The reconciler: the database is the ledger, so a record left waiting with no job that will ever pick it
up (the broker lost its message: a Redis without persistence restarted, a flush, a publish that raced a
crash) is queued again. Claims are compare-and-set, so a job queued twice still publishes once."""

from __future__ import annotations

import logging
from collections.abc import Callable
from datetime import datetime, timedelta

from sqlalchemy import and_, or_, select, update

from media_service.db.models import MediaRecord, Status, utcnow
from media_service.db.repo import Database
from media_service.periodic import Periodic

log = logging.getLogger("media_service.reconcile")


def find_stuck(db: Database, queued_for: timedelta, processing_for: timedelta, limit: int = 500
               ) -> list[tuple[str, str, datetime]]:
    """(id, kind, updated_at) of records queued, or processing with no sign of life, for too long."""
    now = utcnow()
    with db.session() as s:
        rows = s.execute(
            select(MediaRecord.id, MediaRecord.kind, MediaRecord.updated_at)
            .where(or_(and_(MediaRecord.status == Status.QUEUED.value, MediaRecord.updated_at < now - queued_for),
                       and_(MediaRecord.status == Status.PROCESSING.value,
                            MediaRecord.updated_at < now - processing_for)))
            .order_by(MediaRecord.updated_at).limit(limit)).all()
    return [(r[0], r[1], r[2]) for r in rows]


def take(db: Database, media_id: str, seen: datetime) -> bool:
    """Mark the record as handled now, if nobody touched it since ``seen`` (so of several reconcilers,
    one re-queues it; a worker that moved it meanwhile wins)."""
    with db.session() as s:
        done = s.execute(update(MediaRecord).where(MediaRecord.id == media_id, MediaRecord.updated_at == seen)
                         .values(updated_at=utcnow()))
    return bool(done.rowcount)  # type: ignore[attr-defined]


def reconcile_once(db: Database, enqueue: Callable[[str, str], None], queued_for: timedelta,
                   processing_for: timedelta) -> int:
    requeued = 0
    for media_id, kind, seen in find_stuck(db, queued_for, processing_for):
        if take(db, media_id, seen):
            enqueue(media_id, kind)
            requeued += 1
            log.warning("media %s (%s) had no job for too long; queued again", media_id, kind)
    return requeued


class Reconciler(Periodic):
    """``reconcile_once`` every ``interval`` seconds (in each worker's main process; several are harmless)."""

    def __init__(self, db: Database, enqueue: Callable[[str, str], None], interval: float,
                 queued_for: timedelta, processing_for: timedelta) -> None:
        super().__init__("reconciler", interval, lambda: reconcile_once(db, enqueue, queued_for, processing_for))
