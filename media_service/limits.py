"""Every cap in one place. Checked before decoding, and again while decoding (headers lie)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Limits:
    max_upload_bytes: int = 50 * 1024 * 1024
    max_image_pixels: int = 50_000_000  # 50 MP: an iPhone 48 MP ProRAW-derived JPEG still fits
    max_image_side: int = 12_000
    max_stickers: int = 20
    max_recipe_bytes: int = 16 * 1024
    max_sticker_pixels: int = 2048 * 2048
    image_job_seconds: int = 120
    max_video_seconds: int = 60  # of the result; a longer source needs a trim
    max_source_seconds: int = 3600  # of the upload itself
    max_video_side: int = 4096
    max_video_pixels: int = 4096 * 2304
    max_video_fps: float = 120.0
    video_job_seconds: int = 600


DEFAULT_LIMITS = Limits()

# Rendition ladder for photos, widest first; widths above the source's are never produced.
IMAGE_WIDTHS: tuple[int, ...] = (1080, 720, 360)
