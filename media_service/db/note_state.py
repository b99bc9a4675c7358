"""A note's state from its items' states (no database access of its own: used inside transactions)."""

from __future__ import annotations

from dataclasses import dataclass

from sqlalchemy import select
from sqlalchemy.orm import Session

from media_service.db.models import MediaRecord, Note, NoteItem, Status, utcnow


@dataclass(frozen=True)
class NoteState:
    status: str  # processing, ready, failed
    failed_item: str | None


def settle(statuses: dict[str, str], order: list[str]) -> NoteState:
    """A note's state from its items': the first failed item fails it; all ready makes it ready."""
    for media_id in order:
        if statuses.get(media_id) in (Status.FAILED.value, None):  # failed, or deleted
            return NoteState("failed", media_id)
    if all(statuses[m] == Status.READY.value for m in order):
        return NoteState("ready", None)
    return NoteState("processing", None)


def note_members(note: Note) -> list[str]:
    return [*note.items, *([note.cover_id] if note.cover_id else [])]


def refresh_notes_of(session: Session, media_id: str) -> list[Note]:
    """Recompute the notes holding this media; returns those whose state changed (for their events)."""
    changed: list[Note] = []
    note_ids = session.scalars(select(NoteItem.note_id).where(NoteItem.media_id == media_id)).all()
    for note_id in note_ids:
        note = session.get(Note, note_id)
        if note is None:
            continue
        members = note_members(note)
        rows = session.execute(select(MediaRecord.id, MediaRecord.status).where(MediaRecord.id.in_(members)))
        state = settle({r[0]: r[1] for r in rows}, members)
        if (state.status, state.failed_item) != (note.status, note.failed_item):
            note.status, note.failed_item, note.updated_at = state.status, state.failed_item, utcnow()
            changed.append(note)
    return changed
