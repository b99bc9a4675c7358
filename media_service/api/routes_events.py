"""Knowing when it is done: webhooks (registered per owner, deliveries logged per media) and server-sent
events for clients that would rather listen than poll."""

from __future__ import annotations

import asyncio
import json
import time
from collections.abc import AsyncIterator
from datetime import UTC, datetime
from typing import Any

from fastapi import APIRouter, Request, Response
from fastapi.responses import JSONResponse, StreamingResponse
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from media_service.api.routes_media import Owner, Svc
from media_service.db.outbox import WebhookRepo
from media_service.errors import NotFound
from media_service.webhooks import check_url

router = APIRouter(tags=["events"])
SSE_POLL_SECONDS = 0.5
SSE_HEARTBEAT_SECONDS = 15.0
SSE_MAX_SECONDS = 30 * 60


class WebhookIn(BaseModel):
    url: str = Field(min_length=8, max_length=2048, description="http(s) endpoint that receives media events")


def _iso(moment: datetime) -> str:
    """UTC, with its offset, whatever the database kept (SQLite drops the zone)."""
    return (moment if moment.tzinfo else moment.replace(tzinfo=UTC)).isoformat()


def _hooks(svc: Svc) -> WebhookRepo:
    return WebhookRepo(svc.db)


@router.post("/v1/webhooks", status_code=201)
def create_webhook(body: WebhookIn, owner: Owner, svc: Svc) -> JSONResponse:
    """Every state change of this owner's media is POSTed to ``url`` as JSON, signed (``Notes-Signature``)
    with the returned ``secret``, which is shown only here."""
    check_url(body.url, svc.settings.webhook_allow_private)
    hook = _hooks(svc).create(owner, body.url)
    return JSONResponse({"id": hook.id, "url": hook.url, "secret": hook.secret,
                         "created_at": _iso(hook.created_at)}, status_code=201)


@router.get("/v1/webhooks")
def list_webhooks(owner: Owner, svc: Svc) -> dict[str, Any]:
    return {"items": [{"id": h.id, "url": h.url, "created_at": _iso(h.created_at)}
                      for h in _hooks(svc).of_owner(owner)]}


@router.delete("/v1/webhooks/{hook_id}", status_code=204)
def delete_webhook(hook_id: str, owner: Owner, svc: Svc) -> Response:
    if not _hooks(svc).delete(owner, hook_id):
        raise NotFound("No such webhook.")
    return Response(status_code=204)


@router.get("/v1/media/{media_id}/deliveries")
def deliveries(media_id: str, owner: Owner, svc: Svc) -> dict[str, Any]:
    """The webhook delivery log of one media: each event, its state and every attempt."""
    if svc.repo.get(media_id, owner) is None:
        raise NotFound()
    return {"items": [{"id": d.id, "webhook_id": d.webhook_id, "event": d.event, "state": d.state,
                       "attempts": d.attempts, "next_attempt_at": _iso(d.next_attempt_at)
                       if d.state == "pending" else None, "log": d.log, "created_at": _iso(d.created_at)}
                      for d in _hooks(svc).deliveries(owner, media_id)]}


def _snapshot(svc: Svc, media_id: str, owner: str) -> dict[str, Any] | None:
    record = svc.repo.get(media_id, owner)
    if record is None:
        return None
    partial = svc.repo.partial(media_id) if record.status == "processing" and record.kind == "video" else None
    return {"id": record.id, "status": record.status, "progress": round(record.progress, 4),
            "error": {"code": record.error_code, "message": record.error_message} if record.error_code else None,
            # Names of what is usable already while a video renders (GET /v1/media/{id} gives their URLs).
            "usable": [r["name"] for r in partial.renditions] if partial is not None else []}


@router.get("/v1/media/{media_id}/events", response_class=StreamingResponse,
            responses={200: {"content": {"text/event-stream": {}},
                             "description": "`event: status` with the media's status, progress and error, "
                                            "each time they change; the stream ends after a final state"}})
async def events(media_id: str, request: Request, owner: Owner, svc: Svc) -> StreamingResponse:
    first = await run_in_threadpool(_snapshot, svc, media_id, owner)
    if first is None:
        raise NotFound()

    async def stream() -> AsyncIterator[bytes]:
        last: dict[str, Any] | None = None
        snapshot: dict[str, Any] | None = first
        started = beat = time.monotonic()
        while snapshot is not None and time.monotonic() - started < SSE_MAX_SECONDS:
            if snapshot != last:
                yield f"event: status\ndata: {json.dumps(snapshot, separators=(',', ':'))}\n\n".encode()
                last, beat = snapshot, time.monotonic()
                if snapshot["status"] in ("ready", "failed"):
                    return
            elif time.monotonic() - beat >= SSE_HEARTBEAT_SECONDS:
                yield b": keep-alive\n\n"  # proxies close idle streams
                beat = time.monotonic()
            if await request.is_disconnected():
                return
            await asyncio.sleep(SSE_POLL_SECONDS)
            snapshot = await run_in_threadpool(_snapshot, svc, media_id, owner)
        if snapshot is None:
            yield b'event: deleted\ndata: {}\n\n'

    return StreamingResponse(stream(), media_type="text/event-stream",
                             headers={"Cache-Control": "no-store", "X-Accel-Buffering": "no"})
