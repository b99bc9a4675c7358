"""Notes: the ordered media of one post, and their shared state (ready only when every item is)."""

from __future__ import annotations

import secrets

from sqlalchemy import select, update

from media_service.db.models import MediaRecord, Note, NoteItem, Status, utcnow
from media_service.db.note_state import note_members, settle
from media_service.db.outbox import record_event
from media_service.db.repo import Database


class NoteRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, owner: str, kind: str, items: list[str], cover_id: str | None, aspect: str | None) -> Note:
        note = Note(id=secrets.token_hex(16), owner=owner, kind=kind, items=items, cover_id=cover_id, aspect=aspect,
                    status="processing", failed_item=None, created_at=utcnow(), updated_at=utcnow())
        with self.db.session() as s:
            s.add(note)
            for position, media_id in enumerate([*items, *([cover_id] if cover_id else [])]):
                s.add(NoteItem(note_id=note.id, media_id=media_id, position=position))
            s.flush()
            rows = s.execute(select(MediaRecord.id, MediaRecord.status).where(MediaRecord.id.in_(note_members(note))))
            state = settle({r[0]: r[1] for r in rows}, note_members(note))
            note.status, note.failed_item = state.status, state.failed_item
            s.flush()
            s.expunge(note)
        return note

    def get(self, note_id: str, owner: str) -> Note | None:
        with self.db.session() as s:
            note = s.get(Note, note_id)
            if note is None or note.owner != owner:
                return None
            s.expunge(note)
            return note

    def change_recipe(self, media_id: str, recipe: dict[str, object]) -> str | None:
        """Render a media again with another recipe, whatever it is doing: back to ``queued`` (a render in
        flight can no longer publish: it no longer owns a ``processing`` record); a finished one gets a fresh
        attempt budget and keeps serving its set until the new one is complete. Returns the status it had
        (a ``queued`` one already has its job coming: it needs no second one), None if it is gone."""
        finished = (Status.READY.value, Status.FAILED.value)
        with self.db.session() as s:
            for _ in range(3):  # compare-and-set on the status it had; a worker may move it meanwhile
                before = s.scalar(select(MediaRecord.status).where(MediaRecord.id == media_id))
                if before is None:
                    return None
                done = s.execute(update(MediaRecord).where(MediaRecord.id == media_id, MediaRecord.status == before)
                                 .values(recipe=recipe, status=Status.QUEUED.value, progress=0.0, error_code=None,
                                         error_message=None, updated_at=utcnow(),
                                         attempts=0 if before in finished else MediaRecord.attempts))
                if done.rowcount:  # type: ignore[attr-defined]
                    record_event(s, media_id)
                    return str(before)
        raise RuntimeError(f"media {media_id} kept changing state")
