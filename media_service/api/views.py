"""What GET /v1/media/{id} shows: the record, with short-lived URLs on every rendition."""

from __future__ import annotations

from typing import Any

from media_service.db import MediaRecord, Status
from media_service.storage import Storage


def media_view(record: MediaRecord, storage: Storage, ttl: int) -> dict[str, Any]:
    renditions = []
    if record.status == Status.READY:
        for r in record.renditions:
            public = {k: r[k] for k in ("name", "content_type", "width", "height", "bytes")}
            public["url"] = storage.url(r["key"], expires_in=ttl, content_type=r["content_type"])
            renditions.append(public)
    error = ({"code": record.error_code, "message": record.error_message}
             if record.status == Status.FAILED else None)
    return {
        "id": record.id,
        "kind": record.kind,
        "status": record.status,
        "progress": round(record.progress, 4),
        "error": error,
        "source": record.source or {"format": record.original_format, "bytes": record.original_bytes},
        "placeholder": record.placeholder,
        "renditions": renditions,
        "version": record.version,
        "created_at": record.created_at.isoformat() if record.created_at else None,
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
    }
