"""Input options that every ffmpeg/ffprobe invocation puts before ``-i`` on a user file.

Only local files (and our own pipes) may be opened, and only the demuxers of the containers we accept:
an HLS playlist or ffconcat script named .mp4 is refused by the demuxer whitelist before it can open
anything else.
"""

from __future__ import annotations

PROTOCOL_WHITELIST = "file,pipe"
# Demuxer names as ffmpeg spells them (the mov demuxer is one name with commas).
VIDEO_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2,matroska,webm"
AUDIO_DEMUXERS = "ogg,mp3,aac,flac,wav,mov,mp4,m4a,3gp,3g2,mj2"


def input_options(demuxers: str = VIDEO_DEMUXERS) -> dict[str, str]:
    return {"protocol_whitelist": PROTOCOL_WHITELIST, "format_whitelist": demuxers}


def input_args(demuxers: str = VIDEO_DEMUXERS) -> list[str]:
    out: list[str] = []
    for key, value in input_options(demuxers).items():
        out += [f"-{key}", value]
    return out
