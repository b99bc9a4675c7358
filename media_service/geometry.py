"""Crop boxes, output sizes and sticker boxes: pure integer geometry shared by stills and video."""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Box:
    left: int
    top: int
    width: int
    height: int

    @property
    def right(self) -> int:
        return self.left + self.width

    @property
    def bottom(self) -> int:
        return self.top + self.height

    def as_ltrb(self) -> tuple[int, int, int, int]:
        return self.left, self.top, self.right, self.bottom

    def scaled(self, sx: float, sy: float) -> Box:
        left, top = round(self.left * sx), round(self.top * sy)
        return Box(left, top, max(1, round(self.right * sx) - left), max(1, round(self.bottom * sy) - top))


def union(boxes: Sequence[Box]) -> Box:
    left = min(b.left for b in boxes)
    top = min(b.top for b in boxes)
    right = max(b.right for b in boxes)
    bottom = max(b.bottom for b in boxes)
    return Box(left, top, right - left, bottom - top)


def crop_size(src_w: int, src_h: int, ratio: tuple[int, int] | None) -> tuple[int, int]:
    """The largest width×height of the given aspect ratio that fits in the source."""
    if ratio is None:
        return src_w, src_h
    rw, rh = ratio
    # Integer comparison avoids float drift on exact ratios (a 3000×4000 photo at 3:4 is not cropped).
    if src_w * rh > src_h * rw:
        return max(1, src_h * rw // rh), src_h
    return src_w, max(1, src_w * rh // rw)


def _place(start_center: float, size: int, limit: int) -> int:
    return int(min(max(round(start_center - size / 2), 0), limit - size))


def aspect_crop(src_w: int, src_h: int, ratio: tuple[int, int] | None, faces: Sequence[Box] = ()) -> Box:
    """Centre crop to ``ratio``; where faces were found, centre on them instead (clamped to the frame).

    When the faces together are wider than the crop, the crop still centres on their middle: cutting
    every face evenly reads better than keeping one and losing the other.
    """
    w, h = crop_size(src_w, src_h, ratio)
    cx, cy = src_w / 2, src_h / 2
    if faces:
        u = union(faces)
        cx, cy = u.left + u.width / 2, u.top + u.height / 2
        # Keep some headroom: a face centred vertically in a portrait crop looks low.
        cy = cy - 0.1 * h if u.height < h * 0.6 else cy
    return Box(_place(cx, w, src_w), _place(cy, h, src_h), w, h)


def fit_width(width: int, height: int, max_width: int) -> tuple[int, int]:
    """Scale to at most ``max_width`` wide, keeping the aspect; never upscale."""
    if width <= max_width:
        return width, height
    return max_width, max(1, round(height * max_width / width))


def ladder(base_width: int, widths: Sequence[int]) -> list[int]:
    """Rendition widths for an output ``base_width`` wide: every rung that fits, plus the output's own
    width on top when it is narrower than the widest rung (a 500 px photo is served at 500, not 360)."""
    fitting = sorted({w for w in widths if w <= base_width}, reverse=True)
    if widths and base_width < max(widths) and (not fitting or fitting[0] < base_width):
        fitting.insert(0, base_width)
    return fitting


def decode_request(src_w: int, src_h: int, scale: float) -> tuple[int, int]:
    """The smallest decoded size that keeps ``scale`` (output pixels per source pixel) at or below 1.
    JPEG draft mode then picks the largest DCT reduction that stays at least this big."""
    scale = min(1.0, scale)
    return max(1, math.ceil(src_w * scale)), max(1, math.ceil(src_h * scale))


def even_floor(n: float) -> int:
    """Largest even integer ≤ n, at least 2: even dimensions without ever scaling up."""
    return max(2, int(n) // 2 * 2)


def even(n: float) -> int:
    """Nearest even integer ≥ 2 (video encoders need even dimensions)."""
    return max(2, round(n / 2) * 2)


@dataclass(frozen=True)
class StickerPlacement:
    """Where a sticker goes: its scaled size before rotation and the bounding box after rotation."""

    width: int
    height: int
    box: Box


@dataclass(frozen=True)
class Margins:
    """Fractions of the frame's width (left, right) and height (top, bottom)."""

    left: float = 0.0
    top: float = 0.0
    right: float = 0.0
    bottom: float = 0.0


CENTRE = (0.5, 0.5)


def _keep_inside(start: float, size: int, lo: float, hi: float) -> float:
    """Moved the least so that [start, start+size] lies in [lo, hi]; centred on it when it cannot fit."""
    if size > hi - lo:
        return (lo + hi - size) / 2
    return min(max(start, lo), hi - size)


def sticker_placement(
    frame_w: int,
    frame_h: int,
    sticker_w: int,
    sticker_h: int,
    *,
    x: float,
    y: float,
    scale: float,
    rotation: float,
    anchor: tuple[float, float] = CENTRE,
    safe_area: Margins | None = None,
) -> StickerPlacement:
    """``x``, ``y``: where the sticker's ``anchor`` (a point of the sticker, as fractions of its width and
    height; the centre unless its pack says otherwise) lands, as a fraction of the frame; ``scale``: its
    width as a fraction of the frame's width; ``rotation``: degrees clockwise (as on screen), about the
    anchor. With a ``safe_area``, the turned sticker is then moved the least so that it stays out of those
    margins (the app's own buttons cover them)."""
    w = max(1, round(frame_w * scale))
    h = max(1, round(sticker_h * w / sticker_w))
    theta = math.radians(rotation)
    cos, sin = math.cos(theta), math.sin(theta)
    c, s = abs(cos), abs(sin)
    bw = max(1, math.ceil(w * c + h * s - 1e-9))
    bh = max(1, math.ceil(w * s + h * c - 1e-9))
    # The anchor's offset from the sticker's centre, turned clockwise on a y-down screen.
    ax, ay = (anchor[0] - 0.5) * w, (anchor[1] - 0.5) * h
    cx = x * frame_w - (ax * cos - ay * sin)
    cy = y * frame_h - (ax * sin + ay * cos)
    left, top = cx - bw / 2, cy - bh / 2
    if safe_area is not None:
        left = _keep_inside(left, bw, safe_area.left * frame_w, frame_w * (1 - safe_area.right))
        top = _keep_inside(top, bh, safe_area.top * frame_h, frame_h * (1 - safe_area.bottom))
    return StickerPlacement(w, h, Box(round(left), round(top), bw, bh))
