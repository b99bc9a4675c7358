"""ffmpeg's failures, classified once, here, into error codes (never matched on in the HTTP layer)."""

from __future__ import annotations

import re

from media_service.errors import CorruptMedia, MediaError, ToolFailed, UnsupportedMediaType

# (pattern in stderr, error class, public message); the first match wins.
TABLE: list[tuple[re.Pattern[str], type[MediaError], str]] = [
    (re.compile(r"not on whitelist|Protocol '[^']*' not on whitelist"), UnsupportedMediaType,
     "The file is not a plain video file."),
    (re.compile(r"moov atom not found|Invalid data found when processing input|could not find codec parameters"),
     CorruptMedia, "The video could not be read; it may be truncated or damaged."),
    (re.compile(r"Decoder \(codec [^)]*\) not found|Unsupported codec|no decoder"), UnsupportedMediaType,
     "The video uses a codec we do not accept."),
    (re.compile(r"Error while decoding stream|Invalid NAL unit|corrupt decoded frame|error while decoding MB"),
     CorruptMedia, "The video has damaged frames that could not be decoded."),
]


def classify(returncode: int, stderr: str) -> MediaError:
    for pattern, error, message in TABLE:
        if pattern.search(stderr):
            return error(message, detail=f"ffmpeg exited {returncode}: {stderr[-2000:]}")
    return ToolFailed(detail=f"ffmpeg exited {returncode}: {stderr[-2000:]}")
