"""/v1/media: upload, status, delete."""

from __future__ import annotations

import logging
import uuid
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.datastructures import UploadFile

from media_service.api.auth import owner_for
from media_service.api.services import Services
from media_service.api.views import media_view
from media_service.db import MediaRecord, Status
from media_service.errors import (
    EmptyFile,
    InvalidRequest,
    MediaError,
    NotFound,
    UnsupportedMediaType,
)
from media_service.imaging.decode import open_image, read_facts
from media_service.imaging.sniff import CONTENT_TYPES, SNIFF_BYTES, sniff
from media_service.jobs import media_prefix, original_key
from media_service.recipe import check_ids, parse_recipe

log = logging.getLogger("media_service.api")
router = APIRouter(prefix="/v1/media", tags=["media"])
Owner = Annotated[str, Depends(owner_for)]

UPLOAD_SCHEMA: dict[str, Any] = {
    "requestBody": {
        "required": True,
        "content": {"multipart/form-data": {"schema": {
            "type": "object",
            "required": ["file"],
            "properties": {
                "file": {"type": "string", "format": "binary",
                         "description": "JPEG, PNG, WebP, HEIC/HEIF or GIF; told apart by its bytes"},
                "recipe": {"type": "string", "description": "The edit recipe as a JSON document"},
            },
        }}},
    }
}


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


Svc = Annotated[Services, Depends(services)]


@router.post("", status_code=202, openapi_extra=UPLOAD_SCHEMA,
             responses={202: {"description": "Accepted; processing happens in a worker"}})
async def upload(request: Request, owner: Owner, svc: Svc) -> JSONResponse:
    limits = svc.settings.limits
    form = await request.form(max_files=1, max_fields=4, max_part_size=limits.max_recipe_bytes + 1024)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("A multipart field named 'file' is required.", field="file")
        raw_recipe = form.get("recipe")
        if raw_recipe is not None and not isinstance(raw_recipe, str):
            raise InvalidRequest("'recipe' must be a text field holding JSON.", field="recipe")
        recipe = parse_recipe(raw_recipe)
        check_ids(recipe, svc.registry)
        record = _accept(svc, owner, upload, recipe.model_dump(mode="json", exclude_none=True))
    finally:
        await form.close()
    try:
        svc.queue.enqueue(record.id, record.kind)
    except MediaError:
        # Not queued means not accepted: remove what was stored so nothing is left half-done.
        svc.repo.delete(record.id, owner)
        svc.storage.delete_prefix(media_prefix(record.id))
        raise
    body = media_view(record, svc.storage, svc.settings.url_ttl_seconds)
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/media/{record.id}"})


def _accept(svc: Services, owner: str, upload: UploadFile, recipe: dict[str, Any]) -> MediaRecord:
    """Sniff, check caps from the header, store the original, then commit the record."""
    stream = upload.file
    stream.seek(0)
    head = stream.read(SNIFF_BYTES)
    if not head:
        raise EmptyFile()
    sniffed = sniff(head)
    if sniffed is None:
        raise UnsupportedMediaType()
    if sniffed.kind != "image":
        raise UnsupportedMediaType("Video notes are not accepted yet; send a photo.")
    stream.seek(0)
    with open_image(stream) as img:  # header only: nothing is decoded here
        facts = read_facts(img, svc.settings.limits)
    stream.seek(0)
    media_id = uuid.uuid4().hex
    stored = svc.storage.put_stream(original_key(media_id), stream, CONTENT_TYPES[sniffed.format])
    record = MediaRecord(
        id=media_id, owner=owner, kind=sniffed.kind, status=Status.QUEUED.value, progress=0.0,
        recipe=recipe, source=facts.public() | {"bytes": stored.size}, renditions=[],
        original_key=stored.key, original_bytes=stored.size, original_format=facts.format, attempts=0,
    )
    try:
        return svc.repo.create(record)
    except MediaError:
        svc.storage.delete_prefix(media_prefix(media_id))
        raise


@router.get("/{media_id}")
def get_media(media_id: str, owner: Owner, svc: Svc) -> dict[str, Any]:
    record = svc.repo.get(media_id, owner)
    if record is None:
        raise NotFound()
    return media_view(record, svc.storage, svc.settings.url_ttl_seconds)


@router.delete("/{media_id}", status_code=204)
def delete_media(media_id: str, owner: Owner, svc: Svc) -> Response:
    record = svc.repo.delete(media_id, owner)
    if record is None:
        raise NotFound()
    svc.storage.delete_prefix(media_prefix(media_id))
    return Response(status_code=204)
