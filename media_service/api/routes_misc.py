"""Local file downloads and health."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, Response, StreamingResponse

from media_service import metrics
from media_service.api.routes_media import Owner, Svc, quota_view
from media_service.errors import MediaError, NotFound
from media_service.instrument import unwrap
from media_service.storage import LocalStorage
from media_service.storage.signing import validate_key, verify

router = APIRouter()


@router.get("/v1/files/{key:path}", tags=["files"], include_in_schema=False)
def download(key: str, expires: int, sig: str, svc: Svc) -> StreamingResponse:
    """Serves local-storage objects behind an HMAC-signed, expiring URL (S3 uses presigned URLs)."""
    if not isinstance(unwrap(svc.storage), LocalStorage):
        raise NotFound("Downloads are served by the object store.")
    try:
        validate_key(key)
    except ValueError:
        raise NotFound("No such file.") from None
    if not verify(svc.settings.signing_key, key, expires, sig):
        raise NotFound("The link is invalid or has expired.")
    stat = svc.storage.stat(key)
    if stat is None:
        raise NotFound("No such file.")
    return StreamingResponse(svc.storage.iter_bytes(key), media_type=stat.content_type,
                             headers={"Content-Length": str(stat.size), "Cache-Control": "private, max-age=300",
                                      "X-Content-Type-Options": "nosniff"})


@router.get("/healthz", tags=["health"])
def healthz() -> dict[str, str]:
    return {"status": "ok"}


@router.get("/readyz", tags=["health"])
def readyz(svc: Svc) -> JSONResponse:
    checks: dict[str, str] = {}
    for name, check in (("database", svc.db.check), ("storage", svc.storage.check),
                        ("broker", svc.queue.check)):
        try:
            check()
            checks[name] = "ok"
        except MediaError as exc:
            checks[name] = exc.code
    ready = all(v == "ok" for v in checks.values())
    return JSONResponse({"status": "ready" if ready else "unavailable", "checks": checks},
                        status_code=200 if ready else 503)


@router.get("/metrics", tags=["health"], include_in_schema=False)
def prometheus_metrics(request: Request) -> Response:
    """Prometheus exposition: this process's counters and histograms, and the queue gauges computed now."""
    extra = []
    source = getattr(request.app.state, "queue_stats", None)
    if source is not None:
        extra.append(metrics.QueueStatsCollector(source))
    return Response(metrics.render(extra), media_type=metrics.CONTENT_TYPE)


@router.get("/v1/usage", tags=["media"])
def usage(owner: Owner, svc: Svc) -> dict[str, Any]:
    """Today's uploads against the owner's daily quota (UTC days)."""
    return quota_view(svc, owner)
