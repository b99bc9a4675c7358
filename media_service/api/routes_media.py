"""/v1/media: upload, status, delete."""

from __future__ import annotations

import hashlib
import logging
import posixpath
import shutil
import tempfile
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, BinaryIO

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from starlette.concurrency import run_in_threadpool
from starlette.datastructures import UploadFile

from media_service.api.auth import owner_for, take_upload_slot
from media_service.api.idempotent import IDEMPOTENCY_HEADER, REPLAYED, claim, idempotency_key
from media_service.api.services import Services
from media_service.api.views import media_view
from media_service.db import MediaRecord, Status
from media_service.db.tenancy import seconds_to_midnight
from media_service.errors import (
    Busy,
    Conflict,
    EmptyFile,
    InvalidRequest,
    MediaError,
    NotFound,
    QuotaExceeded,
    UnsupportedMediaType,
)
from media_service.ffmpeg.playlist import rewrite_playlist
from media_service.imaging.decode import open_image, read_facts
from media_service.imaging.sniff import CONTENT_TYPES, SNIFF_BYTES, sniff
from media_service.jobs import media_prefix, original_key
from media_service.probe import check_video_caps, probe_video
from media_service.queue import fair_priority
from media_service.recipe import Recipe, check_for_photo, check_ids, output_window, parse_recipe, recipe_from_dict
from media_service.storage import StoredObject
from media_service.storage.signing import validate_key

log = logging.getLogger("media_service.api")
router = APIRouter(prefix="/v1/media", tags=["media"])
Owner = Annotated[str, Depends(owner_for)]
BUSY_RETRY_SECONDS = 30
# How the original is stored: put_stream by default; a direct upload copies its staged object instead.
StoreOriginal = Callable[[str, BinaryIO, str], StoredObject]

UPLOAD_SCHEMA: dict[str, Any] = {
    "parameters": [IDEMPOTENCY_HEADER],
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
    take_upload_slot(request, svc)
    idem_key = idempotency_key(request)
    form = await request.form(max_files=1, max_fields=4, max_part_size=limits.max_recipe_bytes + 1024)
    try:
        upload = form.get("file")
        if not isinstance(upload, UploadFile):
            raise InvalidRequest("A multipart field named 'file' is required.", field="file")
        raw_recipe = form.get("recipe")
        if raw_recipe is not None and not isinstance(raw_recipe, str):
            raise InvalidRequest("'recipe' must be a text field holding JSON.", field="recipe")
        recipe = parse_recipe(raw_recipe)
        check_ids(recipe, svc.packs.current())
        if idem_key is not None:
            fingerprint = await run_in_threadpool(_fingerprint, upload, recipe)
            replay = _replayed(svc, owner, idem_key, fingerprint)
            if replay is not None:
                return replay
        try:
            # Disk, ffprobe and storage work: off the event loop.
            record, reservation = await run_in_threadpool(_accept, svc, owner, upload.file, recipe)
        except BaseException:
            if idem_key is not None:
                svc.idempotency.abandon(owner, idem_key)
            raise
    finally:
        await form.close()
    try:
        _enqueue(svc, owner, record, reservation)
    except MediaError:
        if idem_key is not None:
            svc.idempotency.abandon(owner, idem_key)
        raise
    if idem_key is not None:
        svc.idempotency.finish(owner, idem_key, record.id)
    body = media_view(record, svc.storage, svc.settings.url_ttl_seconds, svc.hls)
    return JSONResponse(body, status_code=202, headers={"Location": f"/v1/media/{record.id}"})


def _enqueue(svc: Services, owner: str, record: MediaRecord, reservation: Reservation) -> None:
    try:
        # This record is already counted among the owner's waiting ones.
        svc.queue.enqueue(record.id, record.kind, fair_priority(svc.repo.count_waiting_for(owner, record.kind) - 1))
    except MediaError:
        # Not queued means not accepted: remove what was stored so nothing is left half-done.
        svc.repo.delete(record.id, owner)
        svc.storage.delete_prefix(media_prefix(record.id))
        svc.usage.release(reservation.owner, reservation.size, reservation.video_seconds, reservation.day)
        raise


def accept_file(svc: Services, owner: str, path: Path, recipe: Recipe, store: StoreOriginal | None = None
                ) -> MediaRecord:
    """The POST /v1/media acceptance path for a file already on local disk (resumable and direct uploads):
    sniff, caps, quota, store the original (``store``, default ``put_stream``), record, enqueue. Blocking."""
    check_ids(recipe, svc.packs.current())
    with path.open("rb") as original:
        record, reservation = _accept(svc, owner, original, recipe, store)
    _enqueue(svc, owner, record, reservation)
    return record


def _accept(svc: Services, owner: str, original: BinaryIO, recipe: Recipe, store: StoreOriginal | None = None
            ) -> tuple[MediaRecord, Reservation]:
    """Sniff, check every cap from the header (or ffprobe), store the original, then commit the record."""
    limits = svc.settings.limits
    stream = original
    stream.seek(0)
    head = stream.read(SNIFF_BYTES)
    if not head:
        raise EmptyFile()
    sniffed = sniff(head)
    if sniffed is None:
        raise UnsupportedMediaType()
    if sniffed.kind == "video":
        _admit_video(svc)
    stream.seek(0)
    video_seconds = 0.0
    with tempfile.TemporaryDirectory(prefix="upload-") as tmp:
        if sniffed.kind == "image":
            check_for_photo(recipe)
            with open_image(stream) as img:  # header only: nothing is decoded here
                source = read_facts(img, limits).public()
            stream.seek(0)
        else:
            # ffprobe reads a private copy on local disk, never the request stream.
            local = Path(tmp) / "source"
            with local.open("wb") as f:
                shutil.copyfileobj(stream, f, 1 << 20)
            video = probe_video(local, timeout=20)
            check_video_caps(video, limits)
            _, video_seconds = output_window(recipe, video.duration, limits.max_video_seconds)
            source = video.public()
            stream = local.open("rb")
        size = _stream_size(stream)
        day = svc.usage.reserve(owner, size, video_seconds, svc.quota)
        if day is None:
            raise QuotaExceeded(retry_after=seconds_to_midnight(), quota=quota_view(svc, owner))
        media_id = uuid.uuid4().hex
        try:
            try:
                put = store or svc.storage.put_stream
                stored = put(original_key(media_id), stream, CONTENT_TYPES[sniffed.format])
            finally:
                if stream is not original:
                    stream.close()
        except BaseException:
            svc.usage.release(owner, size, video_seconds, day)
            raise
    record = MediaRecord(
        id=media_id, owner=owner, kind=sniffed.kind, status=Status.QUEUED.value, progress=0.0,
        recipe=recipe.model_dump(mode="json", exclude_none=True), source=source | {"bytes": stored.size},
        renditions=[], original_key=stored.key, original_bytes=stored.size, original_format=source["format"],
        attempts=0,
    )
    try:
        return svc.repo.create(record), Reservation(owner, size, video_seconds, day)
    except MediaError:
        svc.storage.delete_prefix(media_prefix(media_id))
        svc.usage.release(owner, size, video_seconds, day)
        raise


def _fingerprint(upload: UploadFile, recipe: Recipe) -> str:
    """What makes two requests the same request: the file's bytes and the recipe (as parsed)."""
    digest = hashlib.sha256(recipe.model_dump_json(exclude_none=True).encode())
    stream = upload.file
    stream.seek(0)
    while chunk := stream.read(1 << 20):
        digest.update(chunk)
    stream.seek(0)
    return digest.hexdigest()


def _replayed(svc: Services, owner: str, key: str, fingerprint: str) -> JSONResponse | None:
    """None when this request holds the key; else the answer the first request with it got."""
    existing = claim(svc, owner, key, fingerprint)  # (unscoped: media keys predate the per-route scopes)
    if existing is None:
        return None
    record = svc.repo.get(existing, owner)
    if record is None:
        raise NotFound("The media this Idempotency-Key created has been deleted.")
    return JSONResponse(media_view(record, svc.storage, svc.settings.url_ttl_seconds, svc.hls), status_code=202,
                        headers={"Location": f"/v1/media/{record.id}", **REPLAYED})


def _stream_size(stream: Any) -> int:
    stream.seek(0, 2)
    size = int(stream.tell())
    stream.seek(0)
    return size


def _admit_video(svc: Services) -> None:
    """Admission control: a video that would wait behind too many others is refused now (503, Retry-After)
    rather than accepted into an hour-long wait; photos have their own queue and are not held back."""
    waiting = svc.repo.count_waiting("video")
    if waiting >= svc.settings.max_video_backlog:
        raise Busy(retry_after=BUSY_RETRY_SECONDS, waiting=waiting)


def quota_view(svc: Services, owner: str) -> dict[str, Any]:
    used = svc.usage.get(owner)
    return {"day": used.day, "bytes_used": used.bytes, "bytes_per_day": svc.quota.bytes_per_day,
            "video_seconds_used": round(used.video_seconds, 3),
            "video_seconds_per_day": svc.quota.video_seconds_per_day}


@dataclass(frozen=True)
class Reservation:
    """An upload counted against its owner's daily quota, to give back if it is not accepted after all."""

    owner: str
    size: int
    video_seconds: float
    day: str


@router.get("/{media_id}")
def get_media(media_id: str, owner: Owner, svc: Svc) -> dict[str, Any]:
    record = svc.repo.get(media_id, owner)
    if record is None:
        raise NotFound()
    partial = svc.repo.partial(media_id) if record.status == Status.PROCESSING.value else None
    return media_view(record, svc.storage, svc.settings.url_ttl_seconds, svc.hls, partial)


@router.get("/{media_id}/hls/{path:path}", include_in_schema=False)
def hls_playlist(media_id: str, path: str, expires: int, sig: str, svc: Svc) -> Response:
    """A playlist of the media's HLS tree with every URI signed; the token in the query is the permission."""
    record = svc.repo.get(media_id)
    if record is None:
        raise NotFound()
    hls = next((r for r in record.renditions if r["name"] == "hls"), None)
    if record.version and hls is not None and svc.hls.verify(media_id, record.version, expires, sig):
        version, prefix = record.version, hls["hls_prefix"]
    else:
        # The growing playlist of a render in progress (media_service/early.py), under the version it will publish.
        partial = svc.repo.partial(media_id)
        if partial is None or not svc.hls.verify(media_id, partial.version, expires, sig):
            raise NotFound("The link is invalid or has expired.")
        version, prefix = partial.version, f"{media_prefix(media_id)}{partial.version}/hls/"
    if not path.endswith(".m3u8") or ".." in path.split("/"):
        raise NotFound()
    try:
        key = validate_key(prefix + path)
    except ValueError:
        raise NotFound() from None
    text = b"".join(svc.storage.iter_bytes(key)).decode("utf-8")
    base_dir = path.rsplit("/", 1)[0] + "/" if "/" in path else ""
    ttl = max(1, expires - int(time.time()))

    def sign_uri(uri: str) -> str:
        target = posixpath.normpath(base_dir + uri)
        if target.endswith(".m3u8"):
            return svc.hls.url(media_id, version, target, expires)
        return svc.storage.url(validate_key(prefix + target), expires_in=ttl)

    body = rewrite_playlist(text, sign_uri)
    # A growing playlist is reloaded by players every segment or so: it must not be cached for long.
    cache = "no-store" if "#EXT-X-PLAYLIST-TYPE:EVENT" in text else "private, max-age=60"
    return Response(body, media_type="application/vnd.apple.mpegurl", headers={"Cache-Control": cache})


@router.post("/{media_id}/rerender", status_code=202)
def rerender(media_id: str, owner: Owner, svc: Svc) -> JSONResponse:
    """Render again with the current pack versions and the same recipe; the present renditions keep
    serving until the new version is complete."""
    record = svc.repo.get(media_id, owner)
    if record is None:
        raise NotFound()
    check_ids(recipe_from_dict(record.recipe), svc.packs.current())
    if not svc.repo.requeue_finished(media_id):
        raise Conflict("The media is already being processed.")
    svc.queue.enqueue(media_id, record.kind, fair_priority(svc.repo.count_waiting_for(owner, record.kind) - 1))
    record = svc.repo.get(media_id, owner)
    assert record is not None
    return JSONResponse(media_view(record, svc.storage, svc.settings.url_ttl_seconds, svc.hls), status_code=202)


@router.delete("/{media_id}", status_code=204)
def delete_media(media_id: str, owner: Owner, svc: Svc) -> Response:
    record = svc.repo.delete(media_id, owner)
    if record is None:
        raise NotFound()
    svc.storage.delete_prefix(media_prefix(media_id))
    return Response(status_code=204)
