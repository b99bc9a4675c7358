"""Compare-and-set transitions over media records.

queued ──claim──► processing ──publish──► ready
   ▲                 │  └──fail──► failed
   └─────────────────┘ (a crash leaves it processing; redelivery claims it again, up to the attempt cap)
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from sqlalchemy import case, create_engine, delete, event, func, select, text, update
from sqlalchemy.engine import Engine
from sqlalchemy.exc import OperationalError
from sqlalchemy.orm import Session, sessionmaker

from media_service.db.models import Base, MediaRecord, PartialRenditions, Status, utcnow
from media_service.db.note_state import refresh_notes_of
from media_service.db.outbox import record_event
from media_service.errors import DatabaseUnavailable

ACTIVE = (Status.QUEUED.value, Status.PROCESSING.value)


def normalise_url(url: str) -> str:
    if url.startswith("postgres://"):
        url = "postgresql://" + url[len("postgres://"):]
    if url.startswith("postgresql://"):
        url = "postgresql+psycopg://" + url[len("postgresql://"):]
    return url


class Database:
    def __init__(self, url: str) -> None:
        url = normalise_url(url)
        self.url = url
        if url.startswith("sqlite"):
            self.engine: Engine = create_engine(url, connect_args={"check_same_thread": False, "timeout": 30})
            event.listen(self.engine, "connect", _sqlite_pragmas)
        else:
            self.engine = create_engine(url, pool_pre_ping=True, pool_size=5, max_overflow=10,
                                        connect_args={"connect_timeout": 5})
        self.sessions = sessionmaker(self.engine, expire_on_commit=False)

    def create_all(self) -> None:
        if self.url.startswith("sqlite:///"):
            Path(self.url.removeprefix("sqlite:///")).parent.mkdir(parents=True, exist_ok=True)
        Base.metadata.create_all(self.engine)

    @contextmanager
    def session(self) -> Iterator[Session]:
        try:
            with self.sessions.begin() as session:
                yield session
        except OperationalError as exc:
            raise DatabaseUnavailable(detail=str(exc).splitlines()[0]) from None

    def check(self) -> None:
        with self.session() as s:
            s.execute(text("SELECT 1"))


def _sqlite_pragmas(dbapi_conn: Any, _record: Any) -> None:
    cur = dbapi_conn.cursor()
    # WAL lets the API read while a worker writes; the busy timeout waits instead of failing.
    cur.execute("PRAGMA journal_mode=WAL")
    cur.execute("PRAGMA busy_timeout=30000")
    cur.execute("PRAGMA synchronous=NORMAL")
    cur.close()


def _aware(moment: datetime) -> datetime:
    # SQLite gives back naive datetimes (stored in UTC).
    return moment if moment.tzinfo is not None else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class Claim:
    """The outcome of claiming a record for processing."""

    record: MediaRecord | None
    attempt: int
    reason: str  # "claimed", "gone", "done", "exhausted", "busy" (a live attempt holds it: try again later)

    @property
    def ok(self) -> bool:
        return self.reason == "claimed"


class MediaRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, record: MediaRecord) -> MediaRecord:
        with self.db.session() as s:
            s.add(record)
            s.flush()
            record_event(s, record.id)
        return record

    def get(self, media_id: str, owner: str | None = None) -> MediaRecord | None:
        with self.db.session() as s:
            record = s.get(MediaRecord, media_id)
            if record is None or (owner is not None and record.owner != owner):
                return None
            s.expunge(record)
            return record

    def count_waiting_for(self, owner: str, kind: str) -> int:
        """This owner's media of this kind not yet picked up (per-owner fairness)."""
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(MediaRecord)
                                .where(MediaRecord.owner == owner, MediaRecord.kind == kind,
                                       MediaRecord.status == Status.QUEUED.value)) or 0)

    def count_waiting(self, kind: str) -> int:
        """Media of this kind accepted and not yet picked up by a worker (admission control)."""
        with self.db.session() as s:
            return int(s.scalar(select(func.count()).select_from(MediaRecord)
                                .where(MediaRecord.kind == kind, MediaRecord.status == Status.QUEUED.value)) or 0)

    def waiting_stats(self, kind: str) -> tuple[int, datetime | None]:
        """How many media of this kind wait in ``queued``, and since when the longest-waiting one has (its
        last change of state: accepted, or handed back for a retry). For the queue gauges."""
        with self.db.session() as s:
            row = s.execute(select(func.count(), func.min(MediaRecord.updated_at))
                            .where(MediaRecord.kind == kind, MediaRecord.status == Status.QUEUED.value)).one()
            return int(row[0] or 0), row[1]

    def claim(self, media_id: str, max_attempts: int, lease_seconds: float = 0.0) -> Claim:
        """A queued record, or a ``processing`` one whose attempt has not shown a sign of life (progress or a
        heartbeat) for ``lease_seconds``: its worker is gone. A live attempt is never taken over (a duplicate
        message is told "busy"); with ``lease_seconds`` 0 any processing record is taken."""
        # One cutoff for the UPDATE and for telling "busy" from "exhausted" afterwards: two clock readings
        # would disagree for a record whose last sign of life is right at the lease's edge.
        cutoff = utcnow() - timedelta(seconds=lease_seconds)
        live = (MediaRecord.status == Status.PROCESSING.value) & (MediaRecord.updated_at >= cutoff)
        with self.db.session() as s:
            result = s.execute(
                update(MediaRecord)
                .where(MediaRecord.id == media_id, MediaRecord.status.in_(ACTIVE),
                       MediaRecord.attempts < max_attempts, *([~live] if lease_seconds > 0 else []))
                .values(status=Status.PROCESSING.value, attempts=MediaRecord.attempts + 1, progress=0.0,
                        updated_at=utcnow())
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                s.execute(delete(PartialRenditions).where(PartialRenditions.media_id == media_id))
                record_event(s, media_id)
            record = s.get(MediaRecord, media_id)
            if record is None:
                return Claim(None, 0, "gone")
            s.refresh(record)
            s.expunge(record)
        if result.rowcount == 1:  # type: ignore[attr-defined]
            return Claim(record, record.attempts, "claimed")
        if lease_seconds > 0 and record.status == Status.PROCESSING.value and record.updated_at is not None and \
                _aware(record.updated_at) >= cutoff:
            return Claim(record, record.attempts, "busy")
        if record.status in ACTIVE:
            return Claim(record, record.attempts, "exhausted")
        return Claim(record, record.attempts, "done")

    @staticmethod
    def _while_owned(s: Session, media_id: str, attempt: int, **values: Any) -> bool:
        """Update the record only while ``attempt`` owns it (processing, not taken over): a sign of life.
        False when it no longer does (deleted, or taken over): time to stop."""
        result = s.execute(
            update(MediaRecord)
            .where(MediaRecord.id == media_id, MediaRecord.status == Status.PROCESSING.value,
                   MediaRecord.attempts == attempt)
            .values(updated_at=utcnow(), **values)
        )
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def touch(self, media_id: str, attempt: int) -> bool:
        """The attempt's heartbeat (keeps its lease)."""
        with self.db.session() as s:
            return self._while_owned(s, media_id, attempt)

    def set_progress(self, media_id: str, attempt: int, progress: float) -> bool:
        with self.db.session() as s:
            return self._while_owned(s, media_id, attempt, progress=round(min(max(progress, 0.0), 1.0), 4))

    def publish(self, media_id: str, attempt: int, *, version: str, renditions: list[dict[str, Any]],
                source: dict[str, Any], placeholder: dict[str, Any] | None) -> str | None:
        """Switch the record to a complete rendition set. Returns the version it replaced (to delete),
        or raises LookupError when this attempt no longer owns the record."""
        with self.db.session() as s:
            previous = s.execute(
                select(MediaRecord.version).where(MediaRecord.id == media_id)
            ).scalar_one_or_none()
            result = s.execute(
                update(MediaRecord)
                .where(MediaRecord.id == media_id, MediaRecord.status == Status.PROCESSING.value,
                       MediaRecord.attempts == attempt)
                .values(status=Status.READY.value, progress=1.0, version=version, renditions=renditions,
                        source=source, placeholder=placeholder, error_code=None, error_message=None,
                        updated_at=utcnow())
            )
            if result.rowcount != 1:  # type: ignore[attr-defined]
                raise LookupError(media_id)
            s.execute(delete(PartialRenditions).where(PartialRenditions.media_id == media_id))
            record_event(s, media_id)
        return previous if previous != version else None

    def add_partial(self, media_id: str, attempt: int, version: str, entries: list[dict[str, Any]]) -> bool:
        """Renditions of the attempt in progress that are usable already (replacing any of the same name).
        False when this attempt no longer owns the record."""
        names = {e["name"] for e in entries}
        with self.db.session() as s:
            if not self._while_owned(s, media_id, attempt):
                return False
            row = s.get(PartialRenditions, media_id)
            if row is None or row.attempt != attempt or row.version != version:
                if row is not None:
                    s.delete(row)
                    s.flush()
                s.add(PartialRenditions(media_id=media_id, attempt=attempt, version=version, renditions=entries,
                                        updated_at=utcnow()))
            else:
                row.renditions = [r for r in row.renditions if r["name"] not in names] + entries
                row.updated_at = utcnow()
            return True

    def partial(self, media_id: str) -> PartialRenditions | None:
        """The usable part of the render in progress, if the record is being rendered by that attempt."""
        with self.db.session() as s:
            found = s.execute(
                select(PartialRenditions).join(MediaRecord, MediaRecord.id == PartialRenditions.media_id)
                .where(PartialRenditions.media_id == media_id, MediaRecord.status == Status.PROCESSING.value,
                       MediaRecord.attempts == PartialRenditions.attempt)
            ).scalar_one_or_none()
            if found is not None:
                s.expunge(found)
            return found

    def fail(self, media_id: str, code: str, message: str, *, attempt: int | None = None,
             source: dict[str, Any] | None = None) -> bool:
        with self.db.session() as s:
            conditions = [MediaRecord.id == media_id, MediaRecord.status.in_(ACTIVE)]
            if attempt is not None:
                conditions.append(MediaRecord.attempts == attempt)
            # A re-render that fails leaves the published set serving: back to ready, with the error kept.
            status = case((MediaRecord.version.is_not(None), Status.READY.value), else_=Status.FAILED.value)
            values: dict[str, Any] = {"status": status, "progress": case((MediaRecord.version.is_not(None), 1.0),
                                                                          else_=MediaRecord.progress),
                                      "error_code": code, "error_message": message, "updated_at": utcnow()}
            if source:
                values["source"] = source
            result = s.execute(update(MediaRecord).where(*conditions).values(**values))
            if result.rowcount == 1:  # type: ignore[attr-defined]
                record_event(s, media_id)
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def requeue_finished(self, media_id: str) -> bool:
        """ready/failed → queued with a fresh attempt budget (a rerender); False if it is still in flight."""
        with self.db.session() as s:
            result = s.execute(
                update(MediaRecord)
                .where(MediaRecord.id == media_id, MediaRecord.status.in_((Status.READY.value, Status.FAILED.value)))
                .values(status=Status.QUEUED.value, attempts=0, progress=0.0, error_code=None, error_message=None,
                        updated_at=utcnow())
            )
            if result.rowcount == 1:  # type: ignore[attr-defined]
                record_event(s, media_id)
            return bool(result.rowcount == 1)  # type: ignore[attr-defined]

    def request_cover(self, media_id: str, owner: str, time: float) -> MediaRecord | None:
        """The recipe's cover moves to ``time`` (a later re-render keeps it); the poster follows when the cover
        job has rendered it. None when there is no such ready video."""
        with self.db.session() as s:
            record = s.get(MediaRecord, media_id)
            if record is None or record.owner != owner or record.kind != "video":
                return None
            recipe = dict(record.recipe or {})
            recipe["cover"] = {"time": round(time, 3)}
            record.recipe = recipe
            record.updated_at = utcnow()
            s.flush()
            s.refresh(record)
            s.expunge(record)
            return record

    def swap_posters(self, media_id: str, version: str, time: float, posters: list[dict[str, Any]],
                     placeholder: dict[str, Any]) -> list[dict[str, Any]] | None:
        """Replace the poster renditions of ``version``, cut at ``time`` (compare-and-set: None when the record
        moved on to another version, was deleted, or a later request asked for another time); returns the
        entries replaced, whose objects may go."""
        names = {p["name"] for p in posters}
        with self.db.session() as s:
            record = s.get(MediaRecord, media_id, with_for_update=True)
            wanted = ((record.recipe or {}).get("cover") or {}).get("time") if record is not None else None
            if record is None or record.version != version or wanted is None or abs(float(wanted) - time) > 1e-3:
                return None
            old = [r for r in record.renditions if r["name"] in names]
            record.renditions = [r for r in record.renditions if r["name"] not in names] + posters
            record.placeholder = placeholder
            record.updated_at = utcnow()
            record_event(s, media_id)
            return old

    def requeue(self, media_id: str, attempt: int) -> None:
        with self.db.session() as s:
            s.execute(
                update(MediaRecord)
                .where(MediaRecord.id == media_id, MediaRecord.status == Status.PROCESSING.value,
                       MediaRecord.attempts == attempt)
                .values(status=Status.QUEUED.value, updated_at=utcnow())
            )

    def delete(self, media_id: str, owner: str) -> MediaRecord | None:
        with self.db.session() as s:
            record = s.get(MediaRecord, media_id)
            if record is None or record.owner != owner:
                return None
            s.expunge(record)
            s.execute(delete(MediaRecord).where(MediaRecord.id == media_id))
            s.execute(delete(PartialRenditions).where(PartialRenditions.media_id == media_id))
            refresh_notes_of(s, media_id)  # a note missing an item has failed
            return record
