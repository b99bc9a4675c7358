"""Media events into the webhook outbox, inside the transaction that changes the media's state: an event
is recorded if and only if the change happened."""

from __future__ import annotations

import secrets
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from sqlalchemy import delete, select
from sqlalchemy.orm import Session

from media_service.db.models import MediaRecord, Webhook, WebhookDelivery, utcnow
from media_service.db.note_state import refresh_notes_of

if TYPE_CHECKING:
    from media_service.db.repo import Database

EVENTS = {"queued": "media.queued", "processing": "media.processing", "ready": "media.ready",
          "failed": "media.failed"}


def record_event(session: Session, media_id: str) -> None:
    """One delivery per webhook of the media's owner, describing the record as it now is; and the notes
    holding the media settled again (with an event when a note's state changes)."""
    record = session.get(MediaRecord, media_id)
    if record is None:
        return
    changed_notes = refresh_notes_of(session, media_id)
    hooks = session.scalars(select(Webhook).where(Webhook.owner == record.owner)).all()
    if not hooks:
        return
    for note in changed_notes:
        _add(session, hooks, record.owner, media_id, f"note.{note.status}",
             {"note": {"id": note.id, "status": note.status, "failed_item": note.failed_item,
                       "items": note.items, "cover": note.cover_id}})
    event = EVENTS.get(record.status, f"media.{record.status}")
    if record.status == "ready" and record.error_code:
        event = "media.rerender_failed"  # the previous set still serves; the error says why
    payload = {"media": {"id": record.id, "kind": record.kind, "status": record.status,
                         "attempts": record.attempts, "version": record.version,
                         "error": {"code": record.error_code, "message": record.error_message}
                         if record.error_code else None,
                         "renditions": [r.get("name") for r in record.renditions or []]}}
    _add(session, hooks, record.owner, record.id, event, payload)


def _add(session: Session, hooks: Sequence[Webhook], owner: str, media_id: str, event: str,
         data: dict[str, Any]) -> None:
    now = utcnow()
    for hook in hooks:
        event_id = secrets.token_hex(16)
        session.add(WebhookDelivery(id=event_id, webhook_id=hook.id, owner=owner, media_id=media_id, event=event,
                                    payload={"id": event_id, "type": event, "created_at": now.isoformat(),
                                             "data": data},
                                    state="pending", attempts=0, next_attempt_at=now, log=[], created_at=now))


class WebhookRepo:
    def __init__(self, db: Database) -> None:
        self.db = db

    def create(self, owner: str, url: str) -> Webhook:
        hook = Webhook(id=secrets.token_hex(6), owner=owner, url=url, secret="whsec_" + secrets.token_urlsafe(24),
                       created_at=utcnow())
        with self.db.session() as s:
            s.add(hook)
            s.flush()
            s.expunge(hook)
        return hook

    def of_owner(self, owner: str) -> list[Webhook]:
        with self.db.session() as s:
            hooks = list(s.scalars(select(Webhook).where(Webhook.owner == owner).order_by(Webhook.created_at)))
            for hook in hooks:
                s.expunge(hook)
            return hooks

    def delete(self, owner: str, hook_id: str) -> bool:
        with self.db.session() as s:
            done = s.execute(delete(Webhook).where(Webhook.owner == owner, Webhook.id == hook_id))
            return bool(done.rowcount)  # type: ignore[attr-defined]

    def endpoint(self, hook_id: str) -> tuple[str, str] | None:
        """(url, secret) for the deliverer; None once deleted."""
        with self.db.session() as s:
            row = s.execute(select(Webhook.url, Webhook.secret).where(Webhook.id == hook_id)).first()
            return None if row is None else (str(row[0]), str(row[1]))

    def deliveries(self, owner: str, media_id: str) -> list[WebhookDelivery]:
        with self.db.session() as s:
            rows = list(s.scalars(select(WebhookDelivery).where(WebhookDelivery.owner == owner,
                                                                WebhookDelivery.media_id == media_id)
                                  .order_by(WebhookDelivery.created_at)))
            for row in rows:
                s.expunge(row)
            return rows
