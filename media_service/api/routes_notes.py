"""/v1/notes: a post made of media already uploaded: a carousel of up to 18 photos sharing one aspect, or
one video with an optional cover photo. It is ``ready`` only when every item is."""

from __future__ import annotations

import math
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field

from media_service.api.idempotent import IDEMPOTENCY_HEADER, fingerprint_of, idempotency_key, once
from media_service.api.routes_media import Owner, Svc
from media_service.api.views import media_view
from media_service.db import MediaRecord
from media_service.db.models import Note
from media_service.db.note_state import note_members, settle
from media_service.db.notes import NoteRepo
from media_service.errors import InvalidRequest, NotFound
from media_service.queue import fair_priority
from media_service.recipe import Aspect

router = APIRouter(prefix="/v1/notes", tags=["notes"])
MAX_PHOTOS = 18
CAROUSEL_ASPECTS = (Aspect.PORTRAIT_3_4, Aspect.SQUARE, Aspect.LANDSCAPE_4_3)


class NoteIn(BaseModel):
    media: list[str] = Field(min_length=1, max_length=MAX_PHOTOS,
                             description="media ids in order: photos (a carousel) or one video")
    cover: str | None = Field(default=None, description="a photo to use as the video's cover")


def carousel_aspect(first: MediaRecord) -> Aspect:
    """The first photo's aspect: as its recipe says, or the allowed one nearest its own shape."""
    chosen = Aspect(first.recipe.get("aspect", Aspect.ORIGINAL.value))
    if chosen is not Aspect.ORIGINAL:
        return chosen
    width, height = first.source.get("width") or 3, first.source.get("height") or 4
    own = math.log(width / height)
    return min(CAROUSEL_ASPECTS, key=lambda a: abs(math.log(a.ratio()[0] / a.ratio()[1]) - own))  # type: ignore[index]


def _records(svc: Svc, owner: str, ids: list[str], field: str) -> list[MediaRecord]:
    records = []
    for index, media_id in enumerate(ids):
        record = svc.repo.get(media_id, owner)
        if record is None:
            raise InvalidRequest(f"{field}[{index}]: no such media ({media_id}).", field=f"{field}[{index}]")
        records.append(record)
    return records


def note_view(svc: Svc, note: Note) -> dict[str, Any]:
    ttl = svc.settings.url_ttl_seconds
    members = note_members(note)
    records = {m: svc.repo.get(m) for m in members}
    state = settle({m: r.status for m, r in records.items() if r is not None}, members)
    failed = None
    if state.failed_item is not None:
        record = records.get(state.failed_item)
        failed = {"item": state.failed_item, "error": {"code": record.error_code, "message": record.error_message}
                  if record is not None else {"code": "not_found", "message": "The item was deleted."}}

    def view(media_id: str) -> dict[str, Any] | None:
        record = records.get(media_id)
        return None if record is None else media_view(record, svc.storage, ttl, svc.hls)

    return {"id": note.id, "kind": note.kind, "status": state.status, "failed": failed, "aspect": note.aspect,
            "items": [view(m) for m in note.items], "cover": view(note.cover_id) if note.cover_id else None,
            "created_at": note.created_at.isoformat()}


@router.post("", status_code=201, openapi_extra={"parameters": [IDEMPOTENCY_HEADER]})
def create_note(body: NoteIn, request: Request, owner: Owner, svc: Svc) -> JSONResponse:
    def create() -> tuple[str, JSONResponse]:
        note = _create(svc, owner, body)
        return note.id, JSONResponse(note_view(svc, note), status_code=201,
                                     headers={"Location": f"/v1/notes/{note.id}"})

    def replay(note_id: str) -> JSONResponse:
        existing = NoteRepo(svc.db).get(note_id, owner)
        if existing is None:
            raise NotFound("The note this Idempotency-Key created is gone.")
        return JSONResponse(note_view(svc, existing), status_code=201, headers={"Location": f"/v1/notes/{note_id}"})

    return once(svc, owner, "POST /v1/notes", idempotency_key(request), fingerprint_of(body.model_dump()), create,
                replay)


def _create(svc: Svc, owner: str, body: NoteIn) -> Note:
    if len(set(body.media)) != len(body.media):
        raise InvalidRequest("The same media is listed twice.", field="media")
    records = _records(svc, owner, body.media, "media")
    kinds = {r.kind for r in records}
    cover = _records(svc, owner, [body.cover], "cover")[0] if body.cover else None
    if kinds == {"video"}:
        if len(records) != 1:
            raise InvalidRequest("A video note holds one video.", field="media")
        if cover is not None and cover.kind != "image":
            raise InvalidRequest("A cover is a photo.", field="cover")
        return NoteRepo(svc.db).create(owner, "video", body.media, body.cover, None)
    if kinds != {"image"}:
        raise InvalidRequest("A note is photos (a carousel) or one video, not both.", field="media")
    if cover is not None:
        raise InvalidRequest("A carousel has no separate cover: its first photo is the cover.", field="cover")
    aspect = carousel_aspect(records[0])
    notes = NoteRepo(svc.db)
    for record in records:
        # Every photo takes the first one's aspect, unless its recipe chose one itself.
        if record.recipe.get("aspect", Aspect.ORIGINAL.value) != Aspect.ORIGINAL.value:
            continue
        before = notes.change_recipe(record.id, {**record.recipe, "aspect": aspect.value})
        if before is not None and before != "queued":
            svc.queue.enqueue(record.id, record.kind, fair_priority(svc.repo.count_waiting_for(owner, record.kind) - 1))
    return notes.create(owner, "carousel", body.media, None, aspect.value)


@router.get("/{note_id}")
def get_note(note_id: str, owner: Owner, svc: Svc) -> dict[str, Any]:
    note = NoteRepo(svc.db).get(note_id, owner)
    if note is None:
        raise NotFound("No such note.")
    return note_view(svc, note)
