"""/v1/uploads: resumable uploads (tus 1.0: core, creation, termination, expiration, checksum) and direct
uploads to S3 (presigned multipart). Both end in the same acceptance path as POST /v1/media."""

from __future__ import annotations

import base64
import binascii
import hashlib
import io
import json
import math
import tempfile
import time
import uuid
from collections.abc import Callable
from email.utils import formatdate
from pathlib import Path
from typing import Annotated, Any, BinaryIO, cast

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool
from starlette.requests import ClientDisconnect
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from media_service.api.auth import owner_for, take_upload_slot
from media_service.api.errors import ErrorResponse
from media_service.api.idempotent import IDEMPOTENCY_HEADER, fingerprint_of, idempotency_key, once
from media_service.api.routes_media import accept_file, quota_view
from media_service.api.services import Services
from media_service.api.views import media_view
from media_service.db.tenancy import seconds_to_midnight
from media_service.errors import (
    BadRequest,
    ChecksumMismatch,
    EmptyFile,
    FileTooLarge,
    MediaError,
    NotFound,
    QuotaExceeded,
    StorageObjectMissing,
    TusVersionUnsupported,
    UnsupportedMediaType,
    UploadExpired,
    UploadOffsetMismatch,
    UploadSizeMismatch,
)
from media_service.imaging.sniff import SNIFF_BYTES, sniff
from media_service.recipe import Recipe, check_ids, parse_recipe
from media_service.storage import StoredObject
from media_service.storage.base import MultipartStorage
from media_service.uploads import TusStore, TusUpload

# The tus answers beyond those every route may meet (app.py adds those).
TUS_ERRORS: dict[int | str, dict[str, Any]] = {
    400: {"model": ErrorResponse, "description": "a missing or malformed tus header (`bad_request`)"},
    409: {"model": ErrorResponse, "description": "wrong Upload-Offset (`upload_offset_mismatch`, with "
          "`upload_offset`) or another PATCH to this upload is running (`conflict`)"},
    410: {"model": ErrorResponse, "description": "the upload expired; its bytes are removed (`upload_expired`)"},
    412: {"model": ErrorResponse, "description": "no `Tus-Resumable: 1.0.0` (`tus_version_unsupported`)"},
    460: {"model": ErrorResponse, "description": "the chunk does not match Upload-Checksum (`checksum_mismatch`)"},
}
router = APIRouter(prefix="/v1/uploads", tags=["uploads"])
Owner = Annotated[str, Depends(owner_for)]

TUS_VERSION = "1.0.0"
TUS_EXTENSIONS = "creation,termination,expiration,checksum"
CHECKSUMS: dict[str, Callable[[], Any]] = {"sha1": hashlib.sha1, "sha256": hashlib.sha256, "md5": hashlib.md5}
OFFSET_TYPE = "application/offset+octet-stream"
MAX_METADATA_BYTES = 32 * 1024
S3_MAX_PARTS = 10_000


def services(request: Request) -> Services:
    svc: Services = request.app.state.services
    return svc


Svc = Annotated[Services, Depends(services)]


def tus_store(data_dir: Path, ttl: float) -> TusStore:
    """Partial uploads live on this host's disk, under the data dir."""
    return TusStore(data_dir / "uploads", ttl)


def _store(svc: Services) -> TusStore:
    return tus_store(svc.settings.data_dir, svc.settings.upload_expiry_seconds)


class TusHeaders:
    """Every tus answer (errors too) carries Tus-Resumable; a 412 also says which versions we speak."""

    def __init__(self, app: ASGIApp, prefix: str = "/v1/uploads") -> None:
        self.app = app
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "") if scope["type"] == "http" else ""
        if not path.startswith(self.prefix) or path.startswith(self.prefix + "/direct"):
            await self.app(scope, receive, send)
            return

        async def with_headers(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = list(message.get("headers", []))
                present = {name.lower() for name, _ in headers}
                if b"tus-resumable" not in present:
                    headers.append((b"tus-resumable", TUS_VERSION.encode()))
                if message["status"] == 412 and b"tus-version" not in present:
                    headers.append((b"tus-version", TUS_VERSION.encode()))
                message["headers"] = headers
            await send(message)

        await self.app(scope, receive, with_headers)


# --- tus -----------------------------------------------------------------------------------------------


def _check_version(request: Request) -> None:
    if request.headers.get("tus-resumable") != TUS_VERSION:
        raise TusVersionUnsupported()


def _int_header(request: Request, name: str) -> int:
    raw = request.headers.get(name)
    if raw is None or not raw.isdigit() or len(raw) > 19:
        raise BadRequest(f"Header {name} must be a non-negative integer.", field=name)
    return int(raw)


def _parse_metadata(raw: str | None) -> dict[str, str]:
    """``key base64,key2 base64,flag``: the tus Upload-Metadata encoding; values must be UTF-8 text."""
    if not raw:
        return {}
    if len(raw) > MAX_METADATA_BYTES:
        raise BadRequest("Upload-Metadata is too long.", field="Upload-Metadata")
    out: dict[str, str] = {}
    for pair in raw.split(","):
        parts = pair.strip().split(" ")
        key = parts[0]
        if not key or len(parts) > 2 or not key.isascii() or key in out:
            raise BadRequest("Upload-Metadata must be comma-separated 'key base64value' pairs.",
                             field="Upload-Metadata")
        try:
            out[key] = base64.b64decode(parts[1], validate=True).decode("utf-8") if len(parts) == 2 else ""
        except (binascii.Error, UnicodeDecodeError):
            raise BadRequest(f"Upload-Metadata value of {key!r} is not base64 of UTF-8 text.",
                             field="Upload-Metadata") from None
    return out


def _encode_metadata(metadata: dict[str, str]) -> str:
    return ",".join(f"{k} {base64.b64encode(v.encode()).decode()}" if v else k for k, v in metadata.items())


def _parse_checksum(raw: str | None) -> tuple[str, bytes] | None:
    if raw is None:
        return None
    algo, _, value = raw.strip().partition(" ")
    if algo not in CHECKSUMS:
        raise BadRequest(f"Upload-Checksum algorithm {algo!r} is not supported; use one of {', '.join(CHECKSUMS)}.",
                         field="Upload-Checksum")
    try:
        return algo, base64.b64decode(value, validate=True)
    except binascii.Error:
        raise BadRequest("Upload-Checksum must be '<algorithm> <base64 digest>'.", field="Upload-Checksum") from None


def _recipe_of(metadata: dict[str, str], svc: Services) -> Recipe:
    recipe = parse_recipe(metadata.get("recipe"))
    check_ids(recipe, svc.packs.current())
    return recipe


def _check_quota_room(svc: Services, owner: str, size: int) -> None:
    """Fail at creation, before any byte is sent, if the declared size cannot fit today's quota. (The real
    reservation is made when the file is accepted.)"""
    if svc.usage.get(owner).bytes + size > svc.quota.bytes_per_day:
        raise QuotaExceeded(retry_after=seconds_to_midnight(), quota=quota_view(svc, owner))


def _owned(store: TusStore, upload_id: str, owner: str) -> TusUpload:
    upload = store.get(upload_id)
    if upload is None or upload.owner != owner:
        raise NotFound("No such upload.")
    if upload.expires <= time.time():
        try:
            with store.locked(upload_id):
                store.remove(upload_id)
        except MediaError:
            pass
        raise UploadExpired()
    return upload


def _state_headers(upload: TusUpload) -> dict[str, str]:
    headers = {"Upload-Offset": str(upload.offset), "Upload-Expires": formatdate(upload.expires, usegmt=True),
               "Cache-Control": "no-store"}
    if upload.media_id is not None:
        headers |= {"Media-Id": upload.media_id, "Location": f"/v1/media/{upload.media_id}"}
    return headers


def _tus_options() -> Response:
    return Response(status_code=204, headers={
        "Tus-Resumable": TUS_VERSION, "Tus-Version": TUS_VERSION, "Tus-Extension": TUS_EXTENSIONS,
        "Tus-Checksum-Algorithm": ",".join(CHECKSUMS)})


@router.options("", include_in_schema=False)
def tus_options(svc: Svc) -> Response:
    response = _tus_options()
    response.headers["Tus-Max-Size"] = str(svc.settings.limits.max_upload_bytes)
    return response


@router.options("/{upload_id}", include_in_schema=False)
def tus_options_upload(upload_id: str, svc: Svc) -> Response:
    return tus_options(svc)


@router.post("", status_code=201, openapi_extra={"parameters": [IDEMPOTENCY_HEADER]},
             responses={**TUS_ERRORS, 201: {"description": "Created; Location names the upload"}})
def tus_create(request: Request, owner: Owner, svc: Svc) -> Response:
    """tus creation: headers Tus-Resumable: 1.0.0, Upload-Length, optional Upload-Metadata (`filename`, and
    `recipe`: the edit recipe's JSON, base64 as every tus metadata value). With an Idempotency-Key, a retried
    creation names the same upload (and its offset), never a second one."""
    _check_version(request)
    if "upload-defer-length" in request.headers:
        raise BadRequest("Upload-Defer-Length is not supported: send Upload-Length.", field="Upload-Defer-Length")
    length = _int_header(request, "upload-length")
    if length == 0:
        raise EmptyFile()
    if length > svc.settings.limits.max_upload_bytes:
        raise FileTooLarge(f"Upload-Length is over the limit of {svc.settings.limits.max_upload_bytes} bytes.")
    raw_metadata = request.headers.get("upload-metadata")
    metadata = _parse_metadata(raw_metadata)
    _recipe_of(metadata, svc)  # a bad recipe is refused now, not after the last byte
    store = _store(svc)

    def create() -> tuple[str, Response]:
        _check_quota_room(svc, owner, length)
        take_upload_slot(request, svc)
        store.sweep()
        upload = store.create(owner, length, metadata)
        return upload.id, Response(status_code=201, headers={
            "Location": f"/v1/uploads/{upload.id}", "Upload-Expires": formatdate(upload.expires, usegmt=True)})

    def replay(upload_id: str) -> Response:
        upload = _owned(store, upload_id, owner)
        return Response(status_code=201, headers={"Location": f"/v1/uploads/{upload.id}", **_state_headers(upload)})

    return once(svc, owner, "POST /v1/uploads", idempotency_key(request), fingerprint_of(length, metadata), create,
                replay)


@router.head("/{upload_id}", responses=TUS_ERRORS)
def tus_head(upload_id: str, request: Request, owner: Owner, svc: Svc) -> Response:
    """The upload's offset (and, once accepted, `Media-Id` and `Location` of the media)."""
    _check_version(request)
    upload = _owned(_store(svc), upload_id, owner)
    headers = _state_headers(upload) | {"Upload-Length": str(upload.length)}
    if upload.metadata:
        headers["Upload-Metadata"] = _encode_metadata(upload.metadata)
    return Response(status_code=200, headers=headers)


@router.patch("/{upload_id}", status_code=204, responses=TUS_ERRORS)
async def tus_patch(upload_id: str, request: Request, owner: Owner, svc: Svc) -> Response:
    """Append the body at `Upload-Offset`. The response to the PATCH that completes the upload carries
    `Media-Id` and `Location`, or the error that refused the file (nothing of it is kept then)."""
    _check_version(request)
    if request.headers.get("content-type", "").split(";")[0].strip().lower() != OFFSET_TYPE:
        raise UnsupportedMediaType(f"A PATCH needs Content-Type: {OFFSET_TYPE}.")
    offset = _int_header(request, "upload-offset")
    checksum = _parse_checksum(request.headers.get("upload-checksum"))
    store = _store(svc)
    _owned(store, upload_id, owner)
    with store.locked(upload_id):
        upload = _owned(store, upload_id, owner)  # again, under the lock
        if offset != upload.offset:
            raise UploadOffsetMismatch(upload_offset=upload.offset)
        if upload.media_id is not None:  # accepted already: a retried last PATCH learns the media again
            if await request.body():
                raise FileTooLarge("The upload is complete; it takes no more bytes.")
            return Response(status_code=204, headers=_state_headers(upload))
        declared = request.headers.get("content-length")
        if declared is not None and declared.isdigit() and offset + int(declared) > upload.length:
            raise FileTooLarge("The chunk goes past the Upload-Length declared at creation.")
        written, disconnected = await _receive(request, store.data_path(upload_id), offset, upload.length, checksum)
        upload.offset = offset + written
        store.touch(upload)
        if disconnected or not upload.complete:
            return Response(status_code=204, headers=_state_headers(upload))
        try:
            record = await run_in_threadpool(accept_file, svc, owner, store.data_path(upload_id),
                                             _recipe_of(upload.metadata, svc))
        except MediaError as exc:
            # Busy, quota or a dependency down: keep the bytes; an empty PATCH at the end offset tries again.
            # Anything else refused the file itself: nothing of it is kept.
            if not (exc.retryable or exc.http_status == 429):
                store.remove(upload_id)
            raise
        upload.media_id = record.id
        store.save(upload)
        store.drop_bytes(upload_id)
        return Response(status_code=204, headers=_state_headers(upload))


async def _receive(request: Request, path: Path, offset: int, length: int,
                   checksum: tuple[str, bytes] | None) -> tuple[int, bool]:
    """Stream the body to the upload's file at ``offset``; returns (bytes kept, client went away). A chunk that
    fails its checksum, overruns the length or the body cap is cut back off; a chunk cut short by a lost
    connection is kept (tus core), unless it came with a checksum that can no longer be verified."""
    digest = CHECKSUMS[checksum[0]]() if checksum is not None else None
    written = 0
    keep = False
    disconnected = False
    with path.open("r+b") as f:
        f.seek(offset)
        try:
            try:
                async for chunk in request.stream():
                    if offset + written + len(chunk) > length:
                        raise FileTooLarge("The chunk goes past the Upload-Length declared at creation.")
                    f.write(chunk)
                    written += len(chunk)
                    if digest is not None:
                        digest.update(chunk)
            except ClientDisconnect:
                disconnected = True
                keep = checksum is None
                return (written if keep else 0), True
            if checksum is not None and digest is not None and digest.digest() != checksum[1]:
                raise ChecksumMismatch()
            keep = True
        finally:
            if not keep:
                f.truncate(offset)
            elif disconnected:
                f.flush()
    return written, False


@router.delete("/{upload_id}", status_code=204, responses=TUS_ERRORS)
def tus_terminate(upload_id: str, request: Request, owner: Owner, svc: Svc) -> Response:
    """tus termination: the upload and its bytes are removed (a media it already became is not)."""
    _check_version(request)
    store = _store(svc)
    _owned(store, upload_id, owner)
    with store.locked(upload_id):
        store.remove(upload_id)
    return Response(status_code=204)


# --- direct uploads to S3 ---------------------------------------------------------------------------------


class DirectCreate(BaseModel):
    filename: str = Field(min_length=1, max_length=255)
    size: int = Field(ge=1)
    content_type: str | None = Field(default=None, max_length=255)  # informative only: bytes decide
    recipe: dict[str, Any] | None = None


class DirectPart(BaseModel):
    part_number: int = Field(ge=1, le=S3_MAX_PARTS)
    etag: str = Field(min_length=1, max_length=128)


class DirectComplete(BaseModel):
    parts: list[DirectPart] = Field(min_length=1, max_length=S3_MAX_PARTS)


def _staging(upload_id: str) -> tuple[str, str]:
    return f"uploads/{upload_id}/source", f"uploads/{upload_id}/manifest.json"


def _multipart(svc: Services) -> MultipartStorage:
    storage = cast(MultipartStorage, svc.storage)
    storage.check_multipart()  # local storage: 422 not_supported
    return storage


@router.post("/direct", status_code=201, openapi_extra={"parameters": [IDEMPOTENCY_HEADER]})
def direct_create(body: DirectCreate, request: Request, owner: Owner, svc: Svc) -> JSONResponse:
    """Start a direct upload (S3 storage only; 422 `not_supported` on local disk): PUT each part's bytes to
    its presigned URL, keep each answer's ETag, then call `complete`. With an Idempotency-Key, a retried
    creation gets the same upload (its part URLs signed again), never a second one."""
    storage = _multipart(svc)
    if body.size > svc.settings.direct_upload_max_bytes:
        raise FileTooLarge(f"size is over the limit of {svc.settings.direct_upload_max_bytes} bytes.")
    recipe = parse_recipe(json.dumps(body.recipe)) if body.recipe is not None else parse_recipe(None)
    check_ids(recipe, svc.packs.current())

    def create() -> tuple[str, JSONResponse]:
        _check_quota_room(svc, owner, body.size)
        take_upload_slot(request, svc)
        upload_id = uuid.uuid4().hex
        key, manifest_key = _staging(upload_id)
        s3_upload = storage.create_multipart(key, "application/octet-stream")
        expires_in = int(min(svc.settings.upload_expiry_seconds, 7 * 24 * 3600))
        manifest = {"owner": owner, "size": body.size, "filename": body.filename,
                    "recipe": recipe.model_dump(mode="json", exclude_none=True), "s3_upload_id": s3_upload,
                    "part_size": max(svc.settings.direct_part_bytes, math.ceil(body.size / S3_MAX_PARTS)),
                    "created": time.time(), "expires": time.time() + expires_in, "media_id": None}
        _write_manifest(svc, manifest_key, manifest)
        return upload_id, _direct_answer(storage, upload_id, manifest)

    def replay(upload_id: str) -> JSONResponse:
        manifest = _read_manifest(svc, upload_id, owner)
        if manifest["expires"] <= time.time():
            raise UploadExpired()
        return _direct_answer(storage, upload_id, manifest)

    return once(svc, owner, "POST /v1/uploads/direct", idempotency_key(request),
                fingerprint_of(body.model_dump(mode="json")), create, replay)


def _direct_answer(storage: MultipartStorage, upload_id: str, manifest: dict[str, Any]) -> JSONResponse:
    """The parts to send, each with a presigned URL valid until the upload expires."""
    key, _ = _staging(upload_id)
    size, part_size = manifest["size"], manifest["part_size"]
    expires_in = max(1, int(manifest["expires"] - time.time()))
    parts = [{"part_number": n, "size": min(part_size, size - (n - 1) * part_size),
              "url": storage.presign_part(key, manifest["s3_upload_id"], n, expires_in=expires_in)}
             for n in range(1, math.ceil(size / part_size) + 1)]
    body = {"id": upload_id, "part_size": part_size, "parts": parts,
            "expires_at": formatdate(manifest["expires"], usegmt=True),
            "complete_url": f"/v1/uploads/direct/{upload_id}/complete"}
    if manifest.get("media_id"):
        body["media_id"] = manifest["media_id"]
    return JSONResponse(body, status_code=201, headers={"Location": f"/v1/uploads/direct/{upload_id}"})


def _write_manifest(svc: Services, key: str, manifest: dict[str, Any]) -> None:
    svc.storage.put_stream(key, io.BytesIO(json.dumps(manifest).encode()), "application/json")


def _read_manifest(svc: Services, upload_id: str, owner: str) -> dict[str, Any]:
    if len(upload_id) != 32 or any(c not in "0123456789abcdef" for c in upload_id):
        raise NotFound("No such upload.")
    try:
        manifest: dict[str, Any] = json.loads(b"".join(svc.storage.iter_bytes(_staging(upload_id)[1])))
    except StorageObjectMissing:
        raise NotFound("No such upload.") from None
    if manifest.get("owner") != owner:
        raise NotFound("No such upload.")
    return manifest


@router.post("/direct/{upload_id}/complete", status_code=202)
def direct_complete(upload_id: str, body: DirectComplete, owner: Owner, svc: Svc) -> JSONResponse:
    """Join the parts, then check the object as POST /v1/media checks a file (size as declared, type by its
    bytes, caps) before the media is recorded and queued. A refused object is deleted. Calling it again
    after success returns the same media."""
    storage = _multipart(svc)
    manifest = _read_manifest(svc, upload_id, owner)
    key, manifest_key = _staging(upload_id)
    if manifest["media_id"] is not None:
        return _media_answer(svc, owner, manifest["media_id"])
    if manifest["expires"] <= time.time():
        _discard(svc, storage, upload_id, manifest)
        raise UploadExpired()
    if svc.storage.stat(key) is None:  # not joined yet (a retry after a refused try finds it joined)
        storage.complete_multipart(key, manifest["s3_upload_id"],
                                   [(p.part_number, p.etag) for p in sorted(body.parts, key=lambda p: p.part_number)])
    try:
        record_id = _check_and_accept(svc, storage, owner, key, manifest)
    except MediaError as exc:
        if not (exc.retryable or exc.http_status == 429):
            _discard(svc, storage, upload_id, manifest)
        raise
    manifest["media_id"] = record_id
    _write_manifest(svc, manifest_key, manifest)
    return _media_answer(svc, owner, record_id)


def _check_and_accept(svc: Services, storage: MultipartStorage, owner: str, key: str,
                      manifest: dict[str, Any]) -> str:
    stored = svc.storage.stat(key)
    if stored is None:
        raise StorageObjectMissing("The uploaded object is missing.")
    if stored.size != manifest["size"]:
        raise UploadSizeMismatch(expected=manifest["size"], received=stored.size)
    if sniff(storage.read_range(key, 0, SNIFF_BYTES)) is None:  # refused before anything is downloaded
        raise UnsupportedMediaType()
    recipe = parse_recipe(json.dumps(manifest["recipe"]))

    def copy_staged(dst_key: str, stream: BinaryIO, content_type: str) -> StoredObject:
        digest = hashlib.sha256()
        while chunk := stream.read(1 << 20):
            digest.update(chunk)
        return storage.copy(key, dst_key, content_type, digest.hexdigest())

    with tempfile.TemporaryDirectory(prefix="direct-") as tmp:
        local = Path(tmp) / "source"
        svc.storage.get_to_file(key, local)  # header reading and ffprobe work on a private local copy
        record = accept_file(svc, owner, local, recipe, store=copy_staged)
    svc.storage.delete(key)
    return record.id


def _discard(svc: Services, storage: MultipartStorage, upload_id: str, manifest: dict[str, Any]) -> None:
    key, _ = _staging(upload_id)
    storage.abort_multipart(key, manifest["s3_upload_id"])
    svc.storage.delete_prefix(f"uploads/{upload_id}/")


def _media_answer(svc: Services, owner: str, media_id: str) -> JSONResponse:
    record = svc.repo.get(media_id, owner)
    if record is None:
        raise NotFound("The media this upload created has been deleted.")
    return JSONResponse(media_view(record, svc.storage, svc.settings.url_ttl_seconds, svc.hls), status_code=202,
                        headers={"Location": f"/v1/media/{record.id}"})
