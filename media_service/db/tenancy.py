"""API keys kept as hashes, and each owner's daily upload usage, reserved atomically against a quota."""

from __future__ import annotations

import hashlib
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta

from sqlalchemy import select, update
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert

from media_service.db.models import ApiKey, DailyUsage, utcnow
from media_service.db.repo import Database

KEY_PREFIX = "nm_"


def hash_key(key: str) -> str:
    return hashlib.sha256(key.strip().encode()).hexdigest()


@dataclass(frozen=True)
class KeyInfo:
    id: str
    owner: str
    name: str
    created_at: datetime
    revoked_at: datetime | None


class KeyRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, owner: str, name: str = "") -> tuple[str, KeyInfo]:
        """A new key for ``owner``: returns the key (shown once, never stored) and its record."""
        key = KEY_PREFIX + secrets.token_urlsafe(32)
        row = ApiKey(id=secrets.token_hex(6), key_hash=hash_key(key), owner=owner, name=name, created_at=utcnow())
        with self.db.session() as s:
            s.add(row)
        return key, _info(row)

    def owner_of(self, key_hash: str) -> str | None:
        with self.db.session() as s:
            row = s.execute(select(ApiKey.owner).where(ApiKey.key_hash == key_hash,
                                                       ApiKey.revoked_at.is_(None))).first()
        return None if row is None else str(row[0])

    def list(self, owner: str | None = None) -> list[KeyInfo]:
        query = select(ApiKey).order_by(ApiKey.created_at)
        if owner is not None:
            query = query.where(ApiKey.owner == owner)
        with self.db.session() as s:
            return [_info(row) for row in s.scalars(query)]

    def revoke(self, key_id: str) -> bool:
        with self.db.session() as s:
            done = s.execute(update(ApiKey).where(ApiKey.id == key_id, ApiKey.revoked_at.is_(None))
                             .values(revoked_at=utcnow()))
        return bool(done.rowcount)  # type: ignore[attr-defined]


def _info(row: ApiKey) -> KeyInfo:
    return KeyInfo(row.id, row.owner, row.name, row.created_at, row.revoked_at)


@dataclass(frozen=True)
class Quota:
    bytes_per_day: int
    video_seconds_per_day: float


@dataclass(frozen=True)
class Usage:
    day: str
    bytes: int
    video_seconds: float
    uploads: int


def today(now: datetime | None = None) -> str:
    return (now or datetime.now(UTC)).strftime("%Y-%m-%d")


def seconds_to_midnight(now: datetime | None = None) -> int:
    now = now or datetime.now(UTC)
    midnight = (now + timedelta(days=1)).replace(hour=0, minute=0, second=0, microsecond=0)
    return max(1, int((midnight - now).total_seconds()) + 1)


class UsageRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def reserve(self, owner: str, size: int, video_seconds: float, quota: Quota, day: str | None = None
                ) -> str | None:
        """Add an upload to today's usage if it stays within the quota; one conditional UPDATE, so two
        uploads at once cannot both squeeze under it. Returns the day it was counted on (for ``release``),
        or None when the quota would be exceeded."""
        day = day or today()
        insert = pg_insert if self.db.engine.dialect.name == "postgresql" else sqlite_insert
        with self.db.session() as s:
            s.execute(insert(DailyUsage).values(owner=owner, day=day, bytes=0, video_seconds=0.0, uploads=0)
                      .on_conflict_do_nothing(index_elements=["owner", "day"]))
            done = s.execute(
                update(DailyUsage)
                .where(DailyUsage.owner == owner, DailyUsage.day == day,
                       DailyUsage.bytes + size <= quota.bytes_per_day,
                       DailyUsage.video_seconds + video_seconds <= quota.video_seconds_per_day)
                .values(bytes=DailyUsage.bytes + size, video_seconds=DailyUsage.video_seconds + video_seconds,
                        uploads=DailyUsage.uploads + 1))
        return day if done.rowcount else None  # type: ignore[attr-defined]

    def release(self, owner: str, size: int, video_seconds: float, day: str) -> None:
        """Give back a reservation whose upload was not accepted after all."""
        with self.db.session() as s:
            s.execute(update(DailyUsage).where(DailyUsage.owner == owner, DailyUsage.day == day)
                      .values(bytes=DailyUsage.bytes - size, video_seconds=DailyUsage.video_seconds - video_seconds,
                              uploads=DailyUsage.uploads - 1))

    def get(self, owner: str, day: str | None = None) -> Usage:
        day = day or today()
        with self.db.session() as s:
            row = s.get(DailyUsage, (owner, day))
            if row is None:
                return Usage(day, 0, 0.0, 0)
            return Usage(day, row.bytes, row.video_seconds, row.uploads)
