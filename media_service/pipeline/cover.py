"""A poster at a chosen time of an already rendered video, without encoding the video again.

The rendered video is cut in HLS segments that each start on a keyframe, so one segment (with its init
segment) decodes on its own: the frame comes from the top rung exactly as viewers see it, look and stickers
included, in a fraction of a second.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import ffmpeg
from PIL import Image

from media_service.errors import CorruptMedia
from media_service.ffmpeg.classify import classify
from media_service.ffmpeg.runner import ResourceLimits, run_tool
from media_service.ffmpeg.safety import input_options
from media_service.imaging.encode import Encoded, encode_jpeg, encode_webp
from media_service.imaging.placeholder import blurhash, dominant_color
from media_service.pipeline.video import EXACT_RGB

SEGMENT_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2"
TIMEOUT_SECONDS = 30


@dataclass(frozen=True)
class Poster:
    webp: Encoded
    jpeg: Encoded
    placeholder: dict[str, str]


def _extract(segment: Path, offset: float | None, workdir: Path) -> Path:
    """The frame at ``offset`` seconds from the segment's first (the first at or after it, half a frame early
    allowed), or the last frame when ``offset`` is None."""
    node = ffmpeg.input(segment.name, **input_options(SEGMENT_DEMUXERS)).video.filter("setpts", "PTS-STARTPTS")
    if offset is not None:
        node = node.filter("select", f"gte(t,{max(0.0, offset - 0.017):.4f})")
    node = node.filter("scale", in_color_matrix="bt709", in_range="tv", flags=EXACT_RGB).filter("format", "rgb24")
    png = workdir / "frame.png"
    png.unlink(missing_ok=True)
    # update=1: one file, overwritten by each frame, so without a frame limit the last one stays.
    options = {"update": 1, "map_metadata": -1} | ({"frames": 1} if offset is not None else {})
    argv = ffmpeg.output(node, png.name, **options).compile()
    argv = [argv[0], "-nostdin", "-hide_banner", "-nostats", "-y", *argv[1:]]
    run_tool(argv, timeout=TIMEOUT_SECONDS, cwd=workdir, classify=classify,
             limits=ResourceLimits(cpu_seconds=TIMEOUT_SECONDS * 4, memory_bytes=2 << 30, file_bytes=1 << 30))
    return png


def poster_from_segment(segment: Path, offset: float, workdir: Path) -> Poster:
    """``segment``: an init segment and one media segment, concatenated, in ``workdir``; ``offset``: seconds
    from the segment's first frame. Past its last frame (a time at the very end), the last frame."""
    png = _extract(segment, offset, workdir)
    if not png.exists():
        png = _extract(segment, None, workdir)
    if not png.exists():
        raise CorruptMedia(detail="the segment holds no video frame")
    with Image.open(png) as img:
        frame = img.convert("RGB")
    frame.info = {}
    small = frame.copy()
    small.thumbnail((256, 256))
    return Poster(encode_webp(frame, workdir / "poster.webp"), encode_jpeg(frame, workdir / "poster.jpg"),
                  {"blurhash": blurhash(small), "dominant_color": dominant_color(small)})
