"""What GET /v1/media/{id} shows: the record, with short-lived URLs on every rendition."""

from __future__ import annotations

import time
from dataclasses import dataclass
from typing import Any

from media_service.covers import CANDIDATE_ROLE, poster_time, requested_time
from media_service.db import MediaRecord
from media_service.db.models import PartialRenditions
from media_service.storage import Storage
from media_service.storage.signing import sign, verify

PUBLIC_FIELDS = ("name", "content_type", "width", "height", "bytes", "duration", "bitrate", "packs")


@dataclass(frozen=True)
class HlsSigner:
    """HLS playlists are served by the API (their segment URLs are signed when a player asks), so one
    token covers a media's whole HLS tree at one version."""

    public_base_url: str
    secret: bytes

    @staticmethod
    def scope(media_id: str, version: str) -> str:
        return f"hls/{media_id}/{version}"

    def url(self, media_id: str, version: str, path: str, expires: int) -> str:
        sig = sign(self.secret, self.scope(media_id, version), expires)
        return f"{self.public_base_url.rstrip('/')}/v1/media/{media_id}/hls/{path}?expires={expires}&sig={sig}"

    def verify(self, media_id: str, version: str, expires: int, sig: str) -> bool:
        return verify(self.secret, self.scope(media_id, version), expires, sig)


def media_view(record: MediaRecord, storage: Storage, ttl: int, hls: HlsSigner,
               partial: PartialRenditions | None = None) -> dict[str, Any]:
    renditions = []
    # A complete set stays visible while the media is being rendered again (rerender): it is only replaced
    # when the new one is complete.
    if record.version:
        expires = int(time.time()) + ttl
        for r in record.renditions:
            if r.get("role") == CANDIDATE_ROLE:
                continue  # GET /v1/media/{id}/covers lists them
            public = {k: r[k] for k in PUBLIC_FIELDS if k in r}
            if r["name"] == "hls":
                public["url"] = hls.url(record.id, record.version or "", "master.m3u8", expires)
                public["variants"] = r.get("variants", [])
            else:
                public["url"] = storage.url(r["key"], expires_in=ttl, content_type=r["content_type"])
            renditions.append(public)
    # Failed, or ready with the last re-render's error (the previous set still serving).
    error = ({"code": record.error_code, "message": record.error_message} if record.error_code else None)
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
        **({"cover": cover_view(record)} if record.kind == "video" else {}),
        # While a video renders: what of the new version is usable already (poster, then the lowest rung as a
        # growing HLS playlist); the complete set replaces it in "renditions" when the pass publishes.
        **({"usable": usable_view(record.id, partial, storage, ttl, hls)} if record.kind == "video" else {}),
        "created_at": record.created_at.isoformat() if record.created_at else None,
        "updated_at": record.updated_at.isoformat() if record.updated_at else None,
    }


def cover_view(record: MediaRecord) -> dict[str, Any]:
    """Where the video's poster is cut, and whether a chosen new frame is still being rendered."""
    wanted, current = requested_time(record), poster_time(record)
    return {"time": wanted, "poster_time": current,
            "pending": bool(record.version) and current is not None and abs(current - wanted) > 1e-3}


def usable_view(media_id: str, partial: PartialRenditions | None, storage: Storage, ttl: int, hls: HlsSigner
                ) -> list[dict[str, Any]]:
    if partial is None:
        return []
    expires = int(time.time()) + ttl
    out = []
    for r in partial.renditions:
        public = {k: r[k] for k in (*PUBLIC_FIELDS, "short_side", "seconds", "ended") if k in r}
        if "playlist" in r:
            public["url"] = hls.url(media_id, partial.version, r["playlist"].removeprefix("hls/"), expires)
        else:
            public["url"] = storage.url(r["key"], expires_in=ttl, content_type=r["content_type"])
        out.append(public)
    return out
