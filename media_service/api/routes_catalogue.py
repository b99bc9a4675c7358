"""The catalogue of looks, stickers and music, with previews a client shows as thumbnails."""

from __future__ import annotations

import functools
import io
from pathlib import Path
from typing import Any

import numpy as np
from fastapi import APIRouter, Request, Response
from fastapi.responses import FileResponse
from PIL import Image, ImageOps

from media_service.api.routes_media import Svc
from media_service.errors import NotFound
from media_service.ffmpeg.runner import run_tool
from media_service.ffmpeg.safety import AUDIO_DEMUXERS, input_args
from media_service.imaging.overlay import apply_look

router = APIRouter(tags=["packs"])
PREVIEW_SECONDS = 15
PREVIEW_SIDE = 640
CACHE = "public, max-age=3600"
STICKER_TYPES = {".png": "image/png", ".webp": "image/webp", ".gif": "image/gif"}


def _base(request: Request) -> str:
    services: Any = request.app.state.services
    return str(services.settings.public_base_url).rstrip("/")


@router.get("/v1/filters")
def list_filters(request: Request, svc: Svc) -> dict[str, Any]:
    base = _base(request)
    return {"items": [look.public() | {"preview_url": f"{base}/v1/filters/{look.id}/preview.jpg?v={look.pack.version}"}
                      for look in svc.packs.current().looks.values()]}


@router.get("/v1/stickers")
def list_stickers(request: Request, svc: Svc) -> dict[str, Any]:
    base = _base(request)
    return {"items": [s.public() | {"preview_url": f"{base}/v1/stickers/{s.id}/image?v={s.pack.version}"}
                      for s in svc.packs.current().stickers.values()]}


@router.get("/v1/music")
def list_music(request: Request, svc: Svc) -> dict[str, Any]:
    base = _base(request)
    return {"items": [t.public() | {"preview_url": f"{base}/v1/music/{t.id}/preview.ogg?v={t.pack.version}"}
                      for t in svc.packs.current().tracks.values()]}


@functools.cache
def _sample() -> Image.Image:
    """A colour chart a look shows itself on: hue sweep, grey ramp, skin, sky and foliage patches."""
    h, w = 240, 320
    _, x = np.mgrid[0:h, 0:w]
    hue = Image.fromarray(np.stack([(x * 255 // w), np.full_like(x, 150), np.full_like(x, 220)], -1).astype(np.uint8),
                          "HSV").convert("RGB")
    arr = np.asarray(hue).copy()
    arr[h // 2:, :] = np.repeat((x[h // 2:, :] * 255 // w)[..., None], 3, axis=2)
    for (x0, y0), colour in {(20, 30): (224, 172, 140), (120, 30): (90, 160, 230), (220, 30): (70, 120, 60)}.items():
        arr[y0:y0 + 60, x0:x0 + 80] = colour
    return Image.fromarray(arr.astype(np.uint8))


@functools.lru_cache(maxsize=256)
def _look_preview(look_id: str, version: str, lut: Any) -> bytes:
    """Cached per look and version (the filter object comes from the registry's own cache)."""
    buf = io.BytesIO()
    apply_look(_sample(), lut).save(buf, "JPEG", quality=85)
    return buf.getvalue()


@functools.lru_cache(maxsize=256)
def _designer_preview(path: Path, version: str) -> bytes:
    """The pack's own preview, re-encoded: at most 640 px, no metadata from the designer's camera or editor."""
    with Image.open(path) as src:
        src.draft("RGB", (PREVIEW_SIDE, PREVIEW_SIDE))
        img = ImageOps.exif_transpose(src).convert("RGB")
    img.thumbnail((PREVIEW_SIDE, PREVIEW_SIDE), Image.Resampling.LANCZOS)
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=85)
    return buf.getvalue()


@router.get("/v1/filters/{pack}/{item}/preview.jpg")
def look_preview(pack: str, item: str, svc: Svc) -> Response:
    registry = svc.packs.current()
    look = registry.looks.get(f"{pack}/{item}")
    if look is None:
        raise NotFound("No such look.")
    if look.preview is not None:
        data = _designer_preview(look.preview, look.pack.version)
    else:
        data = _look_preview(look.id, look.pack.version, registry.look_filter(look.id, None))
    return Response(data, media_type="image/jpeg", headers={"Cache-Control": CACHE})


@router.get("/v1/stickers/{pack}/{item}/image")
def sticker_image(pack: str, item: str, svc: Svc) -> FileResponse:
    sticker = svc.packs.current().stickers.get(f"{pack}/{item}")
    if sticker is None:
        raise NotFound("No such sticker.")
    return FileResponse(sticker.path, media_type=STICKER_TYPES.get(sticker.path.suffix.lower(), "image/png"),
                        headers={"Cache-Control": CACHE})


@router.get("/v1/music/{pack}/{item}/preview.ogg")
def music_preview(pack: str, item: str, svc: Svc) -> FileResponse:
    """A 15 s excerpt from the loop (or the start), faded out; cut once per version and kept on disk."""
    track = svc.packs.current().tracks.get(f"{pack}/{item}")
    if track is None:
        raise NotFound("No such track.")
    cache: Path = svc.settings.data_dir / "previews" / track.pack.id / track.pack.version / f"{item}.ogg"
    if not cache.exists():
        cache.parent.mkdir(parents=True, exist_ok=True)
        start = track.loop[0] if track.loop else 0.0
        seconds = min(PREVIEW_SECONDS, track.duration - start)
        part = cache.with_suffix(".part.ogg")
        run_tool(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *input_args(AUDIO_DEMUXERS),
                  "-ss", f"{start:.3f}", "-t", f"{seconds:.3f}", "-i", str(track.path), "-vn", "-af",
                  f"afade=t=out:st={max(0.0, seconds - 1.5):.3f}:d=1.5", "-c:a", "libvorbis", "-q:a", "3",
                  "-map_metadata", "-1", str(part)], timeout=60)
        part.replace(cache)
    return FileResponse(cache, media_type="audio/ogg", headers={"Cache-Control": CACHE})
