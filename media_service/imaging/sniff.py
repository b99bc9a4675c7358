"""Tell formats apart by their bytes, never by file name or Content-Type."""

from __future__ import annotations

from dataclasses import dataclass

SNIFF_BYTES = 64

HEIF_BRANDS = {b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1"}
VIDEO_BRANDS = {b"isom", b"iso2", b"iso4", b"iso5", b"iso6", b"mp41", b"mp42", b"avc1", b"M4V ", b"qt  ",
                b"3gp4", b"3gp5", b"3g2a", b"dash", b"MSNV", b"f4v "}


@dataclass(frozen=True)
class Sniffed:
    kind: str  # "image" or "video"
    format: str  # "jpeg", "png", "webp", "heif", "gif", "mp4", "mov", "webm"


def sniff(head: bytes) -> Sniffed | None:
    """Identify an upload from its first bytes; None when it is nothing we accept."""
    if head.startswith(b"\xff\xd8\xff"):
        return Sniffed("image", "jpeg")
    if head.startswith(b"\x89PNG\r\n\x1a\n"):
        return Sniffed("image", "png")
    if head[:6] in (b"GIF87a", b"GIF89a"):
        return Sniffed("image", "gif")
    if head[:4] == b"RIFF" and head[8:12] == b"WEBP":
        return Sniffed("image", "webp")
    if len(head) >= 12 and head[4:8] == b"ftyp":
        major = head[8:12]
        box_size = int.from_bytes(head[0:4], "big")
        compatible = {head[i:i + 4] for i in range(16, min(box_size, len(head)) - 3, 4)}
        if major in HEIF_BRANDS or (major not in VIDEO_BRANDS and compatible & {b"heic", b"heix"}):
            if major == b"mif1" and b"avif" in compatible and not compatible & {b"heic", b"heix"}:
                return None
            return Sniffed("image", "heif")
        if major == b"qt  ":
            return Sniffed("video", "mov")
        if major in VIDEO_BRANDS:
            return Sniffed("video", "mp4")
    if head.startswith(b"\x1a\x45\xdf\xa3"):
        return Sniffed("video", "webm")
    return None


CONTENT_TYPES = {
    "jpeg": "image/jpeg", "png": "image/png", "gif": "image/gif", "webp": "image/webp", "heif": "image/heif",
    "mp4": "video/mp4", "mov": "video/quicktime", "webm": "video/webm",
}
