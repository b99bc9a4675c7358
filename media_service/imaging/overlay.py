"""Looks and stickers on a still."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from PIL import Image, ImageFilter

from media_service.geometry import CENTRE, Margins, sticker_placement


def apply_look(img: Image.Image, lut: ImageFilter.Color3DLUT) -> Image.Image:
    return img.filter(lut)


@dataclass(frozen=True)
class PlacedSticker:
    image: Image.Image  # RGBA, as the pack ships it
    x: float
    y: float
    scale: float
    rotation: float
    opacity: float
    anchor: tuple[float, float] = CENTRE  # the sticker's point that lands on (x, y); from its pack
    safe_area: Margins | None = None  # frame margins it is kept out of; from its pack


def render_sticker(sticker: PlacedSticker, frame_w: int, frame_h: int) -> tuple[Image.Image, tuple[int, int]]:
    """The sticker scaled, rotated and faded, and the top-left of where it lands on the frame."""
    src = sticker.image
    p = sticker_placement(frame_w, frame_h, src.width, src.height, x=sticker.x, y=sticker.y,
                          scale=sticker.scale, rotation=sticker.rotation, anchor=sticker.anchor,
                          safe_area=sticker.safe_area)
    art = src.resize((p.width, p.height), Image.Resampling.LANCZOS, reducing_gap=3.0)
    if sticker.rotation % 360:
        # Pillow turns counter-clockwise; the recipe's degrees are clockwise, as on screen.
        art = art.rotate(-sticker.rotation, resample=Image.Resampling.BICUBIC, expand=True)
    if sticker.opacity < 1.0:
        alpha = art.getchannel("A").point(lambda a: round(a * sticker.opacity))
        art.putalpha(alpha)
    left = p.box.left + (p.box.width - art.width) // 2
    top = p.box.top + (p.box.height - art.height) // 2
    return art, (left, top)


def place_stickers(img: Image.Image, stickers: Sequence[PlacedSticker]) -> Image.Image:
    """Composite in order (later stickers on top). Pixels outside the frame are clipped."""
    for sticker in stickers:
        art, (left, top) = render_sticker(sticker, img.width, img.height)
        img.paste(art, (left, top), mask=art.getchannel("A"))
    return img
