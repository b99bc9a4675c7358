"""Idempotency-Key: the first request with a key runs; a retry with the same key and body gets what the
first created; the same key with another body is refused; keys are forgotten after a day."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import timedelta

from sqlalchemy import delete, select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from media_service.db.models import IdempotencyKey, utcnow
from media_service.db.repo import Database

KEEP = timedelta(hours=24)


@dataclass(frozen=True)
class Seen:
    """What an earlier request with the same key did: ``media_id`` None while it is still running."""

    fingerprint: str
    media_id: str | None


class IdempotencyRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def begin(self, owner: str, key: str, fingerprint: str) -> Seen | None:
        """Claim the key for this request (None: go ahead), or say what the request that holds it did."""
        insert = pg_insert if self.db.engine.dialect.name == "postgresql" else sqlite_insert
        with self.db.session() as s:
            s.execute(delete(IdempotencyKey).where(IdempotencyKey.owner == owner, IdempotencyKey.key == key,
                                                   IdempotencyKey.created_at < utcnow() - KEEP))
            # RETURNING, not rowcount: the PostgreSQL driver reports a row count for ON CONFLICT DO NOTHING
            # even when nothing was inserted.
            inserted = s.execute(insert(IdempotencyKey).values(owner=owner, key=key, fingerprint=fingerprint,
                                                               media_id=None, created_at=utcnow())
                                 .on_conflict_do_nothing(index_elements=["owner", "key"])
                                 .returning(IdempotencyKey.key)).first()
            if inserted is not None:
                return None
            row = s.execute(select(IdempotencyKey.fingerprint, IdempotencyKey.media_id)
                            .where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)).one()
            return Seen(row[0], row[1])

    def finish(self, owner: str, key: str, media_id: str) -> None:
        with self.db.session() as s:
            s.execute(update(IdempotencyKey).where(IdempotencyKey.owner == owner, IdempotencyKey.key == key)
                      .values(media_id=media_id))

    def abandon(self, owner: str, key: str) -> None:
        """The request failed: a retry with this key starts afresh."""
        with self.db.session() as s:
            s.execute(delete(IdempotencyKey).where(IdempotencyKey.owner == owner, IdempotencyKey.key == key,
                                                   IdempotencyKey.media_id.is_(None)))
