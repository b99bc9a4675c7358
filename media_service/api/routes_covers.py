"""/v1/media/{id}/covers and /cover: a video's cover candidates, and choosing the poster's frame."""

from __future__ import annotations

from typing import Any

from fastapi import APIRouter, Query
from fastapi.responses import JSONResponse
from pydantic import BaseModel, Field, model_validator

from media_service.api.routes_media import Owner, Svc
from media_service.api.views import cover_view, media_view
from media_service.covers import candidates, poster_time
from media_service.db import MediaRecord, Status
from media_service.errors import Conflict, InvalidRequest, MediaError, NotFound

router = APIRouter(prefix="/v1/media", tags=["media"])


class CoverIn(BaseModel):
    time: float | None = Field(default=None, ge=0, le=3600, description="seconds into the rendered video")
    candidate: int | None = Field(default=None, ge=0, le=31,
                                  description="or: the index of a candidate from GET /covers (best first)")

    @model_validator(mode="after")
    def one_of(self) -> CoverIn:
        if (self.time is None) == (self.candidate is None):
            raise ValueError("give either 'time' or 'candidate'")
        return self


def _video(svc: Any, media_id: str, owner: str) -> MediaRecord:
    record: MediaRecord | None = svc.repo.get(media_id, owner)
    if record is None:
        raise NotFound()
    if record.kind != "video":
        raise InvalidRequest("Only videos have a cover to choose; a photo is its own cover.", field="media_id")
    if not record.version:
        raise Conflict("The video is not rendered yet; its cover candidates come with its renditions.")
    return record


@router.get("/{media_id}/covers")
def list_covers(media_id: str, owner: Owner, svc: Svc,
                n: int = Query(default=6, ge=1, le=32, description="how many candidates")) -> dict[str, Any]:
    """The best frames of the rendered video (look and stickers on), scored by sharpness, exposure, faces and
    distance from scene cuts; pick one with PUT /v1/media/{id}/cover."""
    record = _video(svc, media_id, owner)
    ttl = svc.settings.url_ttl_seconds
    items = [{"index": i, "time": c["time"], "score": c["score"], "scores": c.get("scores", {}),
              "width": c["width"], "height": c["height"],
              "url": svc.storage.url(c["key"], expires_in=ttl, content_type=c["content_type"])}
             for i, c in enumerate(candidates(record)[:n])]
    return {"items": items, "cover": cover_view(record)}


@router.put("/{media_id}/cover", status_code=202,
            responses={202: {"description": "Accepted; the poster is rendered again at that time"}})
def choose_cover(media_id: str, body: CoverIn, owner: Owner, svc: Svc) -> JSONResponse:
    """Move the poster to another frame of the rendered video (no re-encode); the media stays ready and
    serving meanwhile. ``cover.pending`` in the answer is true until the new poster is in place."""
    record = _video(svc, media_id, owner)
    if record.status != Status.READY.value:
        raise Conflict("The video is being rendered again; choose its cover when it is ready.")
    if body.candidate is not None:
        found = candidates(record)
        if body.candidate >= len(found):
            raise InvalidRequest(f"candidate: there are {len(found)} candidates", field="candidate")
        at = float(found[body.candidate]["time"])
    else:
        assert body.time is not None
        at = body.time
    duration = max((float(r.get("duration", 0.0)) for r in record.renditions if r["name"].endswith(".mp4")),
                   default=0.0)
    if at >= duration:
        raise InvalidRequest(f"time: {at:g} s is past the end of the video ({duration:.2f} s)", field="time")
    at = round(at, 3)
    before = poster_time(record)
    updated = svc.repo.request_cover(media_id, owner, at)
    if updated is None:
        raise NotFound()
    if before is None or abs(before - at) > 1e-3:
        try:
            svc.queue.enqueue_cover(media_id, at)
        except MediaError:
            if before is not None:
                svc.repo.request_cover(media_id, owner, before)
            raise
    body_out = media_view(updated, svc.storage, svc.settings.url_ttl_seconds, svc.hls)
    return JSONResponse(body_out, status_code=202, headers={"Location": f"/v1/media/{media_id}"})
