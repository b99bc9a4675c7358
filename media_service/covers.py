"""Choosing a video's cover after it is rendered: the candidates the pass scored, and a new poster at the
time the client picked, cut from one HLS segment of the top rung (no re-encode; see pipeline/cover.py)."""

from __future__ import annotations

import logging
import secrets
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_service.db import MediaRecord, MediaRepo
from media_service.errors import MediaError
from media_service.ffmpeg.hls import segment_at
from media_service.jobs import media_prefix
from media_service.pipeline.cover import poster_from_segment
from media_service.storage import Storage

log = logging.getLogger("media_service.covers")
CANDIDATE_ROLE = "cover_candidate"
POSTER_NAMES = ("poster.webp", "poster.jpg")


def candidates(record: MediaRecord) -> list[dict[str, Any]]:
    """The scored candidate stills of the published version, best first."""
    found = [r for r in record.renditions or [] if r.get("role") == CANDIDATE_ROLE]
    return sorted(found, key=lambda r: -float(r.get("score", 0.0)))


def poster_time(record: MediaRecord) -> float | None:
    poster = next((r for r in record.renditions or [] if r["name"] == "poster.webp"), None)
    return None if poster is None or "time" not in poster else float(poster["time"])


def requested_time(record: MediaRecord) -> float:
    return float(((record.recipe or {}).get("cover") or {}).get("time", 0.0))


@dataclass(frozen=True)
class CoverContext:
    repo: MediaRepo
    storage: Storage
    tmp_root: Path | None = None


def render_cover(ctx: CoverContext, media_id: str, time: float) -> str:
    """The poster of the published version, again at ``time``. Returns "ready", "stale" (the cover moved on
    or the record changed version meanwhile: nothing to do) or "gone"."""
    record = ctx.repo.get(media_id)
    if record is None or not record.version:
        return "gone"
    if abs(requested_time(record) - time) > 1e-3:
        return "stale"  # a later PUT asked for another time; its own job renders that
    hls = next((r for r in record.renditions if r["name"] == "hls"), None)
    if hls is None:
        raise MediaError(detail="no HLS rendition to cut a poster from")
    top = max(hls["variants"], key=lambda v: v["width"] * v["height"])
    playlist_key = hls["hls_prefix"] + top["name"]
    base = playlist_key.rsplit("/", 1)[0] + "/"
    playlist = b"".join(ctx.storage.iter_bytes(playlist_key)).decode("utf-8")
    uri, start, init = segment_at(playlist, time)
    workdir = Path(tempfile.mkdtemp(prefix=f"cover-{media_id}-", dir=ctx.tmp_root))
    version = record.version
    folder = f"{media_prefix(media_id)}{version}/cover-{secrets.token_hex(4)}/"
    try:
        segment = workdir / "segment.mp4"
        with segment.open("wb") as out:
            for key in ([base + init] if init else []) + [base + uri]:
                for chunk in ctx.storage.iter_bytes(key):
                    out.write(chunk)
        poster = poster_from_segment(segment, time - start, workdir)
        entries = []
        for encoded, name in ((poster.webp, "poster.webp"), (poster.jpeg, "poster.jpg")):
            stored = ctx.storage.put_file(folder + name, encoded.path, encoded.content_type)
            entries.append({"name": name, "content_type": encoded.content_type, "width": encoded.width,
                            "height": encoded.height, "bytes": encoded.bytes, "key": folder + name,
                            "sha256": stored.sha256, "time": round(time, 3)})
        replaced = ctx.repo.swap_posters(media_id, version, round(time, 3), entries, poster.placeholder)
        if replaced is None:
            ctx.storage.delete_prefix(folder)
            return "stale"
        for old in replaced:
            ctx.storage.delete(old["key"])
        log.info("media %s: poster at %.3f s", media_id, time)
        return "ready"
    except BaseException:
        ctx.storage.delete_prefix(folder)
        raise
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def give_up_cover(repo: MediaRepo, media_id: str, time: float) -> None:
    """The poster could not be cut at ``time``: the recipe's cover goes back to where the poster is, so the
    record does not show a change pending for ever."""
    record = repo.get(media_id)
    current = poster_time(record) if record is not None else None
    if record is not None and current is not None and abs(requested_time(record) - time) <= 1e-3:
        repo.request_cover(media_id, record.owner, current)
