"""Rendition encoders. Nothing from the source's metadata is ever passed to an encoder."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from PIL import Image

# WebP q82 method 2 (of 0–6): measured with bench/photo_bench.py --webp-sweep against Pillow's default
# (q80, method 4); see bench/README.md.
WEBP_QUALITY = 82
WEBP_METHOD = 2
JPEG_QUALITY = 84


@dataclass(frozen=True)
class Encoded:
    path: Path
    content_type: str
    width: int
    height: int
    bytes: int


def encode_webp(img: Image.Image, path: Path) -> Encoded:
    img.save(path, "WEBP", quality=WEBP_QUALITY, method=WEBP_METHOD, exif=b"", icc_profile=b"", xmp=b"")
    return Encoded(path, "image/webp", img.width, img.height, path.stat().st_size)


def encode_jpeg(img: Image.Image, path: Path) -> Encoded:
    img.save(path, "JPEG", quality=JPEG_QUALITY, progressive=True, subsampling="4:2:0", exif=b"",
             icc_profile=None)
    return Encoded(path, "image/jpeg", img.width, img.height, path.stat().st_size)
