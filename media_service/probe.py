"""Facts about a video (or audio) source from ffprobe: dimensions after rotation, duration, fps, codecs."""

from __future__ import annotations

import json
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

from media_service.errors import CorruptMedia, MediaError, UnsupportedMediaType
from media_service.ffmpeg.classify import classify
from media_service.ffmpeg.runner import ResourceLimits, run_tool
from media_service.ffmpeg.safety import AUDIO_DEMUXERS, VIDEO_DEMUXERS, input_args
from media_service.limits import Limits

VIDEO_CODECS = {"h264", "hevc", "vp8", "vp9", "av1", "mpeg4"}
AUDIO_CODECS = {"aac", "mp3", "opus", "vorbis", "alac", "flac", "pcm_s16le", "pcm_s24le", "pcm_f32le",
                "pcm_s16be", "ac3", "eac3"}
HDR_TRANSFERS = {"smpte2084", "arib-std-b67"}


class NoVideoStream(MediaError):
    code = "no_video_stream"
    http_status = 422
    default_message = "The file has no video stream."


@dataclass(frozen=True)
class VideoFacts:
    container: str
    duration: float
    width: int  # as displayed: after the rotation tag
    height: int
    rotation: int  # degrees, as ffprobe reports the display matrix
    fps: float  # average
    nominal_fps: float  # the stream's base rate (r_frame_rate)
    vfr: bool
    video_codec: str
    pix_fmt: str
    bit_depth: int
    color_transfer: str | None
    color_primaries: str | None
    color_space: str | None
    color_range: str | None
    has_audio: bool
    audio_codec: str | None
    audio_channels: int
    audio_sample_rate: int
    frames: int | None

    @property
    def hdr(self) -> bool:
        return self.color_transfer in HDR_TRANSFERS

    def public(self) -> dict[str, Any]:
        return {"format": self.container, "width": self.width, "height": self.height,
                "duration": round(self.duration, 3), "fps": round(self.fps, 3), "video_codec": self.video_codec,
                "audio_codec": self.audio_codec, "hdr": self.hdr, "bit_depth": self.bit_depth}


def _rate(text: str | None) -> float:
    try:
        value = Fraction(text or "0")
    except (ValueError, ZeroDivisionError):
        return 0.0
    return float(value) if value > 0 else 0.0


def _rotation(stream: dict[str, Any]) -> int:
    for side in stream.get("side_data_list", []) or []:
        if "rotation" in side:
            try:
                return round(float(side["rotation"])) % 360
            except (TypeError, ValueError):
                return 0
    try:
        return int(stream.get("tags", {}).get("rotate", 0)) % 360
    except (TypeError, ValueError):
        return 0


def _bit_depth(stream: dict[str, Any]) -> int:
    raw = stream.get("bits_per_raw_sample")
    if raw and str(raw).isdigit():
        return int(raw)
    pix = stream.get("pix_fmt", "")
    for depth in (16, 12, 10):
        if f"p{depth}" in pix:
            return depth
    return 8


# ffprobe reads headers (and decodes a few frames to find codec parameters): a hostile file gets this much
# address space, with two decoder threads (as many threads as cores would reserve more than this on a big host).
PROBE_MEMORY_BYTES = 3 << 30
PROBE_THREADS = "2"
PROBE_OUTPUT_BYTES = 16 << 20


def ffprobe_json(path: Path, *, demuxers: str, timeout: float = 30) -> dict[str, Any]:
    """ffprobe on a local file only (protocol and demuxer whitelists before ``-i``), with CPU, memory and
    file-size limits and a timeout; ``path`` is the job's (or the upload's) private copy."""
    argv = ["ffprobe", "-v", "error", "-hide_banner", "-threads", PROBE_THREADS, *input_args(demuxers),
            "-show_format", "-show_streams", "-of", "json", "-i", str(path)]
    limits = ResourceLimits(cpu_seconds=max(1, int(timeout)), memory_bytes=PROBE_MEMORY_BYTES,
                            file_bytes=PROBE_OUTPUT_BYTES)
    result = run_tool(argv, timeout=timeout, classify=classify, limits=limits)
    try:
        data: dict[str, Any] = json.loads(result.stdout or b"{}")
    except json.JSONDecodeError:
        raise CorruptMedia(detail="ffprobe printed no JSON") from None
    return data


def probe_video(path: Path, timeout: float = 30) -> VideoFacts:
    data = ffprobe_json(path, demuxers=VIDEO_DEMUXERS, timeout=timeout)
    streams = data.get("streams", [])
    # Cover art is a video stream too (attached_pic); it is not the video.
    videos = [s for s in streams if s.get("codec_type") == "video"
              and not (s.get("disposition") or {}).get("attached_pic")]
    audios = [s for s in streams if s.get("codec_type") == "audio"]
    if not videos:
        raise NoVideoStream()
    v = videos[0]
    codec = v.get("codec_name", "")
    if codec not in VIDEO_CODECS:
        raise UnsupportedMediaType(f"Video codec {codec or 'unknown'!r} is not accepted (H.264, HEVC, VP8/9, AV1).")
    a = audios[0] if audios else None
    if a is not None and a.get("codec_name") not in AUDIO_CODECS:
        a = None  # an audio stream we cannot decode is treated as no audio, not as a failure
    fmt = data.get("format", {})
    duration = _rate(fmt.get("duration")) or _rate(v.get("duration"))
    if duration <= 0:
        raise CorruptMedia("The video has no duration.")
    w, h = int(v.get("width") or 0), int(v.get("height") or 0)
    if w <= 0 or h <= 0:
        raise CorruptMedia("The video has no picture size.")
    rotation = _rotation(v)
    if rotation in (90, 270):
        w, h = h, w
    avg = _rate(v.get("avg_frame_rate"))
    nominal = _rate(v.get("r_frame_rate"))
    fps = avg or nominal
    frames = int(v["nb_frames"]) if str(v.get("nb_frames", "")).isdigit() else None
    container = "webm" if "webm" in fmt.get("format_name", "") or "matroska" in fmt.get("format_name", "") \
        else ("mov" if fmt.get("tags", {}).get("major_brand", "").strip() == "qt" else "mp4")
    return VideoFacts(
        container=container, duration=duration, width=w, height=h, rotation=rotation, fps=fps, nominal_fps=nominal,
        vfr=bool(avg and nominal and abs(avg - nominal) > 0.5),
        video_codec=codec, pix_fmt=v.get("pix_fmt", ""), bit_depth=_bit_depth(v),
        color_transfer=v.get("color_transfer"), color_primaries=v.get("color_primaries"),
        color_space=v.get("color_space"), color_range=v.get("color_range"),
        has_audio=a is not None, audio_codec=a.get("codec_name") if a else None,
        audio_channels=int(a.get("channels") or 0) if a else 0,
        audio_sample_rate=int(a.get("sample_rate") or 0) if a else 0, frames=frames,
    )


class VideoTooBig(MediaError):
    code = "video_too_large"
    http_status = 422
    default_message = "The video is larger than the limits."


def check_video_caps(facts: VideoFacts, limits: Limits) -> None:
    """Caps from the container's header; the pipeline enforces them again while decoding (-t)."""
    if facts.duration > limits.max_source_seconds:
        raise VideoTooBig(f"The video is {facts.duration:.0f} s long; uploads are at most "
                          f"{limits.max_source_seconds} s (and the result at most {limits.max_video_seconds} s).")
    if max(facts.width, facts.height) > limits.max_video_side or facts.width * facts.height > limits.max_video_pixels:
        raise VideoTooBig(f"The video is {facts.width}×{facts.height}; the limit is {limits.max_video_side} px "
                          "on a side (4K).")
    if facts.fps > limits.max_video_fps:
        raise VideoTooBig(f"The video runs at {facts.fps:.0f} fps; the limit is {limits.max_video_fps:.0f}.")


@dataclass(frozen=True)
class AudioFacts:
    duration: float
    codec: str
    channels: int
    sample_rate: int


def probe_audio(path: Path, timeout: float = 30) -> AudioFacts:
    data = ffprobe_json(path, demuxers=AUDIO_DEMUXERS, timeout=timeout)
    audios = [s for s in data.get("streams", []) if s.get("codec_type") == "audio"]
    if not audios:
        raise CorruptMedia("The file has no audio stream.")
    a = audios[0]
    duration = _rate(data.get("format", {}).get("duration")) or _rate(a.get("duration"))
    return AudioFacts(duration, a.get("codec_name", ""), int(a.get("channels") or 0), int(a.get("sample_rate") or 0))
