"""HLS: the master playlist over the variant playlists that ffmpeg's hls muxer wrote beside each MP4."""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from pathlib import Path

EXTINF = re.compile(r"^#EXTINF:([0-9.]+)")


@dataclass(frozen=True)
class Variant:
    playlist: str  # relative to the master playlist, e.g. "720p/index.m3u8"
    width: int
    height: int
    fps: float
    video_codec: str  # RFC 6381, e.g. "avc1.64001f"
    audio_codec: str | None  # "mp4a.40.2", or None for a silent video


def segment_stats(playlist: Path) -> tuple[int, int]:
    """(peak, average) bits per second over the playlist's segments, as HLS's BANDWIDTH and
    AVERAGE-BANDWIDTH want them (the init segment is counted with the first media segment)."""
    lines = playlist.read_text().splitlines()
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist.read_text())
    init_bytes = (playlist.parent / init.group(1)).stat().st_size if init else 0
    peak = 0.0
    total_bits = 0.0
    total_seconds = 0.0
    duration: float | None = None
    for line in lines:
        match = EXTINF.match(line)
        if match:
            duration = float(match.group(1))
            continue
        if line and not line.startswith("#") and duration:
            bits = ((playlist.parent / line).stat().st_size + init_bytes) * 8
            init_bytes = 0
            peak = max(peak, bits / duration)
            total_bits += bits
            total_seconds += duration
            duration = None
    average = total_bits / total_seconds if total_seconds else 0.0
    return math.ceil(peak), math.ceil(average)


def segment_at(playlist: str, time: float) -> tuple[str, float, str | None]:
    """The media segment of a VOD playlist that holds ``time``: (its URI, its start, the init segment's URI).
    A time past the end gives the last segment."""
    init = re.search(r'#EXT-X-MAP:URI="([^"]+)"', playlist)
    start = 0.0
    duration: float | None = None
    found: tuple[str, float] | None = None
    for line in playlist.splitlines():
        match = EXTINF.match(line)
        if match:
            duration = float(match.group(1))
        elif line and not line.startswith("#") and duration is not None:
            found = (line.strip(), start)
            if time < start + duration:
                break
            start += duration
            duration = None
    if found is None:
        raise ValueError("the playlist lists no segment")
    return found[0], found[1], init.group(1) if init else None


def master_playlist(variants: list[tuple[Variant, int, int]]) -> str:
    """``variants``: (variant, peak bps, average bps), any order; written highest bandwidth first."""
    out = ["#EXTM3U", "#EXT-X-VERSION:7", "#EXT-X-INDEPENDENT-SEGMENTS"]
    for v, peak, average in sorted(variants, key=lambda item: -item[1]):
        codecs = v.video_codec + (f",{v.audio_codec}" if v.audio_codec else "")
        out.append(f'#EXT-X-STREAM-INF:BANDWIDTH={peak},AVERAGE-BANDWIDTH={average},RESOLUTION={v.width}x{v.height},'
                   f'FRAME-RATE={v.fps:.3f},CODECS="{codecs}"')
        out.append(v.playlist)
    return "\n".join(out) + "\n"


def avc_codec_string(profile_idc: int, constraint_flags: int, level_idc: int) -> str:
    return f"avc1.{profile_idc:02x}{constraint_flags:02x}{level_idc:02x}"


def avc_codec_from_mp4(path: Path) -> str:
    """The RFC 6381 codec string from the avcC box of an MP4 (or fMP4 init segment)."""
    data = path.read_bytes()[:4_000_000]
    at = data.find(b"avcC")
    if at < 0 or at + 8 > len(data):
        return "avc1.640028"
    # avcC: version(1) profile(1) constraints(1) level(1)
    return avc_codec_string(data[at + 5], data[at + 6], data[at + 7])
