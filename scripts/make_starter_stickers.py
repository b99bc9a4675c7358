#!/usr/bin/env python3
"""Generate the starter sticker pack: ``stickers/starter/pack.toml`` and ``stickers/starter/<id>.png``.

Each sticker is drawn with Pillow from simple shapes (no fonts, no external art) at 4× resolution,
given a white "die-cut" border and a soft shadow, and downsampled with LANCZOS to 512 px on its longer
side. The output is deterministic: running the script twice writes byte-identical files (for a given
Pillow/zlib build). The generated data is released under CC0-1.0.

Usage::

    python scripts/make_starter_stickers.py                # writes into stickers/starter/ of this repo
    python scripts/make_starter_stickers.py --out /tmp/x   # writes pack.toml and the PNGs into /tmp/x
"""

from __future__ import annotations

import argparse
import io
import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
from PIL import Image, ImageChops, ImageColor, ImageDraw, ImageFilter

SCRIPT_NAME = "scripts/make_starter_stickers.py"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "stickers" / "starter"

SIZE = 512  # longer side of every sticker, px
MARGIN = 40  # transparent margin around the art (room for the border and the shadow), px
SS = 4  # supersampling factor
BORDER = 14  # white die-cut border, px
SHADOW_BLUR = 5.0  # Gaussian radius of the shadow, px
SHADOW_OFFSET = 5  # shadow drop, px
SHADOW_ALPHA = 0.28
SHADOW_RGB = (58, 40, 74)

Point = tuple[float, float]
Colour = str | tuple[int, int, int, int]

# Palette: bold, flat, friendly.
RED = "#FF3B5C"
PINK = "#FF7EB3"
PINK_LIGHT = "#FFB3CF"
CORAL = "#FF6B3D"
ORANGE = "#FF9F1C"
YELLOW = "#FFD23F"
GOLD = "#FFC629"
AMBER = "#F5A623"
GREEN = "#3FC26A"
GREEN_DARK = "#2FA457"
MINT = "#4FC1A6"
BLUE = "#4D9DFF"
SKY = "#BDE3FF"
PURPLE = "#8E6CFF"
BROWN = "#6B3E26"
INK = "#4A2E2A"  # eyes and mouths: a warm dark brown reads softer than black
BLUSH = "#FF8FA3"
WHITE = "#FFFFFF"


def rgba(colour: Colour) -> tuple[int, int, int, int]:
    if isinstance(colour, tuple):
        return colour
    r, g, b = ImageColor.getrgb(colour)[:3]
    return (r, g, b, 255)


# --------------------------------------------------------------------------------------------------
# A small vector "pen" drawing in design coordinates onto a supersampled RGBA image.
# --------------------------------------------------------------------------------------------------


class Pen:
    def __init__(self, image: Image.Image, scale: float, origin: Point) -> None:
        self.image = image
        self.scale = scale
        self.origin = origin
        self.draw = ImageDraw.Draw(image)

    # coordinates
    def p(self, x: float, y: float) -> tuple[float, float]:
        return ((x - self.origin[0]) * self.scale, (y - self.origin[1]) * self.scale)

    def pts(self, points: Sequence[Point]) -> list[tuple[float, float]]:
        return [self.p(x, y) for x, y in points]

    # primitives
    def poly(self, points: Sequence[Point], fill: Colour, radius: float | Sequence[float] = 0.0) -> None:
        if not isinstance(radius, (int, float)) or radius > 0:
            points = rounded_polygon(points, radius)
        self.draw.polygon(self.pts(points), fill=rgba(fill))

    def circle(self, cx: float, cy: float, r: float, fill: Colour) -> None:
        x0, y0 = self.p(cx - r, cy - r)
        x1, y1 = self.p(cx + r, cy + r)
        self.draw.ellipse((x0, y0, x1, y1), fill=rgba(fill))

    def ellipse(self, cx: float, cy: float, rx: float, ry: float, fill: Colour, angle: float = 0.0) -> None:
        self.poly(ellipse_points(cx, cy, rx, ry, angle), fill)

    def rrect(self, x0: float, y0: float, x1: float, y1: float, r: float, fill: Colour) -> None:
        a, b = self.p(x0, y0)
        c, d = self.p(x1, y1)
        self.draw.rounded_rectangle((a, b, c, d), radius=r * self.scale, fill=rgba(fill))

    def stroke(self, points: Sequence[Point], width: float, fill: Colour) -> None:
        """A polyline with round caps and joins."""
        w = width * self.scale
        xy = self.pts(points)
        self.draw.line(xy, fill=rgba(fill), width=max(1, round(w)), joint="curve")
        for x, y in xy:
            self.draw.ellipse((x - w / 2, y - w / 2, x + w / 2, y + w / 2), fill=rgba(fill))

    def arc(self, cx: float, cy: float, r: float, a0: float, a1: float, width: float, fill: Colour) -> None:
        """An arc (degrees, clockwise from +x since y points down) with round caps."""
        n = max(8, int(abs(a1 - a0) / 2))
        pts = [
            (cx + r * math.cos(math.radians(a)), cy + r * math.sin(math.radians(a)))
            for a in np.linspace(a0, a1, n)
        ]
        self.stroke(pts, width, fill)

    @contextmanager
    def layer(self, clip: bool = False, opacity: float = 1.0) -> Iterator[Pen]:
        """Draw on a separate layer, then composite it (clipped to what is already drawn, if asked)."""
        sub = Image.new("RGBA", self.image.size, (0, 0, 0, 0))
        yield Pen(sub, self.scale, self.origin)
        alpha = sub.getchannel("A")
        if clip:
            alpha = ImageChops.multiply(alpha, self.image.getchannel("A"))
        if opacity < 1.0:
            alpha = alpha.point(lambda v: round(v * opacity))
        sub.putalpha(alpha)
        self.image.alpha_composite(sub)


def ellipse_points(
    cx: float, cy: float, rx: float, ry: float, angle: float = 0.0, n: int = 180
) -> list[Point]:
    ca, sa = math.cos(math.radians(angle)), math.sin(math.radians(angle))
    out = []
    for i in range(n):
        t = 2 * math.pi * i / n
        x, y = rx * math.cos(t), ry * math.sin(t)
        out.append((cx + x * ca - y * sa, cy + x * sa + y * ca))
    return out


def rounded_polygon(points: Sequence[Point], radius: float | Sequence[float], steps: int = 24) -> list[Point]:
    """Replace the corners of a simple polygon by circular arcs (one radius, or one per corner)."""
    out: list[Point] = []
    n = len(points)
    radii = [float(radius)] * n if isinstance(radius, (int, float)) else [float(r) for r in radius]
    for i in range(n):
        if radii[i] <= 0:
            out.append((float(points[i][0]), float(points[i][1])))
            continue
        p = np.array(points[i], dtype=float)
        a = np.array(points[i - 1], dtype=float)
        b = np.array(points[(i + 1) % n], dtype=float)
        ua, ub = a - p, b - p
        la, lb = float(np.hypot(*ua)), float(np.hypot(*ub))
        ua, ub = ua / la, ub / lb
        cos_t = float(np.clip(ua @ ub, -1.0, 1.0))
        theta = math.acos(cos_t)
        if theta < 1e-6 or abs(math.pi - theta) < 1e-6:
            out.append((float(p[0]), float(p[1])))
            continue
        t = radii[i] / math.tan(theta / 2)
        t = min(t, 0.5 * la, 0.5 * lb)
        r = t * math.tan(theta / 2)
        bis = ua + ub
        bis /= float(np.hypot(*bis))
        centre = p + bis * (r / math.sin(theta / 2))
        t1, t2 = p + ua * t, p + ub * t
        a1 = math.atan2(t1[1] - centre[1], t1[0] - centre[0])
        a2 = math.atan2(t2[1] - centre[1], t2[0] - centre[0])
        d = (a2 - a1 + math.pi) % (2 * math.pi) - math.pi  # the short way round
        for k in range(steps + 1):
            ang = a1 + d * k / steps
            out.append((float(centre[0] + r * math.cos(ang)), float(centre[1] + r * math.sin(ang))))
    return out


def heart_points(cx: float, cy: float, s: float, n: int = 360) -> list[Point]:
    """The classic parametric heart, 32·s wide, top of the lobes at about cy - 12·s."""
    pts = []
    for i in range(n):
        t = 2 * math.pi * i / n
        x = 16 * math.sin(t) ** 3
        y = 13 * math.cos(t) - 5 * math.cos(2 * t) - 2 * math.cos(3 * t) - math.cos(4 * t)
        pts.append((cx + s * x, cy - s * y))
    return pts


def star_points(
    cx: float, cy: float, r_out: float, r_in: float, n: int = 5, rot: float = -90.0
) -> list[Point]:
    pts = []
    for i in range(2 * n):
        r = r_out if i % 2 == 0 else r_in
        a = math.radians(rot + 180.0 * i / n)
        pts.append((cx + r * math.cos(a), cy + r * math.sin(a)))
    return pts


def twinkle_points(cx: float, cy: float, rx: float, ry: float, p: float = 0.55, n: int = 240) -> list[Point]:
    """A 4-point twinkle: the superellipse |x/rx|^p + |y/ry|^p = 1 with p < 1 (concave sides)."""
    pts = []
    for i in range(n):
        t = 2 * math.pi * i / n
        c, s = math.cos(t), math.sin(t)
        pts.append(
            (cx + rx * math.copysign(abs(c) ** (2 / p), c), cy + ry * math.copysign(abs(s) ** (2 / p), s))
        )
    return pts


def cute_face(pen: Pen, cx: float, cy: float, size: float, blush: Colour = BLUSH) -> None:
    """Two eyes with a glint, a small smile and rosy cheeks; size is the face width."""
    ex, ey = 0.22 * size, 0.0
    for sx in (-1, 1):
        pen.ellipse(cx + sx * ex, cy + ey, 0.05 * size, 0.068 * size, INK)
        pen.circle(cx + sx * ex - 0.016 * size, cy + ey - 0.026 * size, 0.018 * size, WHITE)
    pen.arc(cx, cy + 0.06 * size, 0.085 * size, 25, 155, 0.032 * size, INK)
    with pen.layer(opacity=0.75) as lp:
        for sx in (-1, 1):
            lp.ellipse(cx + sx * 0.34 * size, cy + 0.1 * size, 0.075 * size, 0.045 * size, blush)


def shine(
    pen: Pen,
    cx: float,
    cy: float,
    rx: float,
    ry: float,
    angle: float,
    dot: Point | None = None,
    dot_r: float = 0.0,
    opacity: float = 0.9,
) -> None:
    with pen.layer(opacity=opacity) as lp:
        lp.ellipse(cx, cy, rx, ry, WHITE, angle)
        if dot is not None:
            lp.circle(dot[0], dot[1], dot_r, WHITE)


# --------------------------------------------------------------------------------------------------
# The stickers. Each draws in its own design space; the renderer fits the drawing to the canvas.
# --------------------------------------------------------------------------------------------------


def draw_heart(pen: Pen) -> None:
    pen.poly(heart_points(256, 240, 13.0), RED)
    # The glint sits on the upper-left lobe, well away from the centre of the sticker.
    shine(pen, 150, 150, 34, 19, -48, dot=(196, 112), dot_r=10)


def draw_star(pen: Pen) -> None:
    cx, cy, ro, ri = 256, 270, 230, 118
    pts = star_points(cx, cy, ro, ri)
    pen.poly(pts, GOLD, radius=26)
    # Faceted look: the right half of every arm is a shade darker.
    with pen.layer(clip=True) as lp:
        for i in range(0, 10, 2):
            tip = star_points(cx, cy, ro * 1.3, ri, rot=-90)[i]
            nxt = star_points(cx, cy, ro * 1.3, ri * 1.01, rot=-90)[(i + 1) % 10]
            lp.poly([(cx, cy), tip, nxt], AMBER)
    shine(pen, 200, 215, 22, 12, -40, dot=(222, 188), dot_r=6, opacity=0.85)


def draw_sparkle(pen: Pen) -> None:
    pen.poly(twinkle_points(230, 280, 165, 215), YELLOW)
    with pen.layer(clip=True) as lp:
        lp.poly([(230, 280), (230, 40), (420, 280), (230, 520)], "#FFC21A")
    pen.poly(twinkle_points(420, 110, 62, 80), PINK)
    pen.circle(430, 420, 26, "#7FD1FF")


def draw_sun(pen: Pen) -> None:
    cx, cy = 256, 256
    for k in range(12):
        a = math.radians(k * 30 - 90)
        half = math.radians(10.5)
        tip = (cx + 246 * math.cos(a), cy + 246 * math.sin(a))
        b1 = (cx + 150 * math.cos(a - half), cy + 150 * math.sin(a - half))
        b2 = (cx + 150 * math.cos(a + half), cy + 150 * math.sin(a + half))
        pen.poly([b1, tip, b2], ORANGE, radius=12)
    pen.circle(cx, cy, 168, YELLOW)
    cute_face(pen, cx, cy + 8, 230)
    shine(pen, 175, 165, 30, 15, -40, opacity=0.7)


def cloud_shape(pen: Pen, dx: float, dy: float, s: float, fill: Colour) -> None:
    pen.rrect(dx + 60 * s, dy + 230 * s, dx + 452 * s, dy + 370 * s, 70 * s, fill)
    pen.circle(dx + 160 * s, dy + 250 * s, 95 * s, fill)
    pen.circle(dx + 280 * s, dy + 200 * s, 125 * s, fill)
    pen.circle(dx + 385 * s, dy + 265 * s, 80 * s, fill)


def draw_cloud(pen: Pen) -> None:
    cloud_shape(pen, 0, 0, 1.0, SKY)
    with pen.layer(clip=True) as lp:
        lp.rrect(0, 330, 512, 420, 0, "#A6D7FF")
    cute_face(pen, 262, 275, 200)
    shine(pen, 225, 125, 34, 16, -25, opacity=0.85)


def draw_flower(pen: Pen) -> None:
    cx, cy = 256, 256
    for k in range(5):
        a = math.radians(-90 + 72 * k)
        pen.circle(cx + 125 * math.cos(a), cy + 125 * math.sin(a), 105, PINK)
    for k in range(5):
        a = math.radians(-90 + 72 * k)
        pen.ellipse(cx + 140 * math.cos(a), cy + 140 * math.sin(a), 38, 22, PINK_LIGHT, math.degrees(a))
    pen.circle(cx, cy, 78, YELLOW)
    for k in range(7):
        a = math.radians(20 + 360 * k / 7)
        pen.circle(cx + 44 * math.cos(a), cy + 44 * math.sin(a), 9, AMBER)
    pen.circle(cx - 20, cy - 22, 12, "#FFF1B8")


def draw_rainbow(pen: Pen) -> None:
    cx, cy = 256, 330
    bands = ["#FF5E62", "#FFA447", YELLOW, "#5ED39A", BLUE]
    r = 200.0
    for colour in bands:
        x0, y0 = pen.p(cx - r, cy - r)
        x1, y1 = pen.p(cx + r, cy + r)
        pen.draw.pieslice((x0, y0, x1, y1), 180, 360, fill=rgba(colour))
        r -= 28
    x0, y0 = pen.p(cx - r, cy - r)
    x1, y1 = pen.p(cx + r, cy + r)
    pen.draw.pieslice((x0, y0, x1, y1), 180, 360, fill=(0, 0, 0, 0))
    # Fluffy clouds at both feet.
    for fx in (cx - 134, cx + 134):
        for dx, dy, rr in ((-50, 12, 40), (0, -8, 52), (50, 12, 40)):
            pen.circle(fx + dx, cy + dy, rr, "#E6F4FF")
        pen.rrect(fx - 90, cy + 5, fx + 90, cy + 52, 24, "#E6F4FF")


def draw_speech_bubble(pen: Pen) -> None:
    pen.poly([(150, 300), (260, 300), (112, 420)], BLUE, radius=14)
    pen.rrect(40, 60, 472, 340, 110, BLUE)
    for x in (166, 256, 346):
        pen.circle(x, 200, 30, WHITE)
    shine(pen, 120, 118, 30, 13, -30, opacity=0.6)


def draw_arrow(pen: Pen) -> None:
    pen.rrect(40, 135, 330, 225, 45, CORAL)
    pen.poly([(290, 50), (480, 180), (290, 310)], CORAL, radius=26)
    with pen.layer(opacity=0.55) as lp:
        lp.stroke([(90, 160), (250, 160)], 16, WHITE)


def draw_crown(pen: Pen) -> None:
    pen.poly([(92, 330), (62, 140), (170, 225), (256, 92), (342, 225), (450, 140), (420, 330)], GOLD, 16)
    for x, y in ((62, 140), (256, 92), (450, 140)):
        pen.circle(x, y, 28, GOLD)
    with pen.layer(clip=True) as lp:
        lp.poly([(256, 92), (342, 225), (450, 140), (470, 400), (256, 400)], "#FFB81C")
    pen.rrect(80, 292, 432, 362, 20, AMBER)
    pen.circle(170, 327, 17, "#FF4D6D")
    pen.circle(256, 327, 20, BLUE)
    pen.circle(342, 327, 17, "#3DDC97")
    shine(pen, 110, 215, 12, 32, -10, opacity=0.7)


def draw_lightning(pen: Pen) -> None:
    pts = [(300, 20), (112, 286), (236, 286), (188, 492), (400, 206), (272, 206), (356, 20)]
    pen.poly(pts, YELLOW, radius=14)
    with pen.layer(clip=True) as lp:
        lp.poly([(336, 0), (400, 206), (188, 520), (500, 520), (500, 0)], "#FFB700")
    shine(pen, 250, 110, 11, 40, 35, opacity=0.75)


def draw_smiley(pen: Pen) -> None:
    cx, cy = 256, 256
    pen.circle(cx, cy, 228, YELLOW)
    with pen.layer(clip=True) as lp:  # a darker crescent on the lower right
        lp.circle(cx, cy, 240, "#FFC21A")
        lp.circle(cx - 26, cy - 26, 236, (0, 0, 0, 0))
    for sx in (-1, 1):
        pen.ellipse(cx + sx * 80, cy - 50, 25, 38, INK)
        pen.circle(cx + sx * 80 - 8, cy - 64, 9, WHITE)
    # Open smile with a tongue.
    x0, y0 = pen.p(cx - 110, cy - 70)
    x1, y1 = pen.p(cx + 110, cy + 150)
    pen.draw.pieslice((x0, y0, x1, y1), 0, 180, fill=rgba(INK))
    with pen.layer(clip=True) as lp:
        lp.circle(cx, cy + 150, 62, "#FF6F7F")
    with pen.layer(opacity=0.7) as lp:
        for sx in (-1, 1):
            lp.ellipse(cx + sx * 150, cy + 40, 36, 22, BLUSH)
    shine(pen, 140, 120, 40, 18, -40, opacity=0.8)


def draw_pin(pen: Pen) -> None:
    cx, cy, r = 256, 200, 160
    tip = (256.0, 492.0)
    d = tip[1] - cy
    alpha = math.acos(r / d)  # angle at the centre between the axis and the tangent points
    t1 = (cx + r * math.sin(alpha), cy + r * math.cos(alpha))
    t2 = (cx - r * math.sin(alpha), cy + r * math.cos(alpha))
    pen.poly([t2, t1, tip], "#FF4D6D", radius=14)
    pen.circle(cx, cy, r, "#FF4D6D")
    with pen.layer(clip=True) as lp:
        lp.poly([(cx, 0), (520, 0), (520, 520), (cx, 520)], "#E8385A")
    pen.circle(cx, cy, 64, WHITE)
    shine(pen, 165, 125, 30, 14, -45, opacity=0.75)


def draw_camera(pen: Pen) -> None:
    pen.rrect(120, 80, 250, 150, 22, "#3F86E8")
    pen.rrect(350, 96, 420, 140, 16, INK)
    pen.rrect(36, 120, 476, 420, 64, "#5FB7FF")
    pen.rrect(36, 210, 476, 250, 0, "#3F86E8")
    pen.circle(256, 272, 122, WHITE)
    pen.circle(256, 272, 100, "#2E3A59")
    pen.circle(256, 272, 62, "#5B6FA6")
    pen.circle(256, 272, 30, "#2E3A59")
    pen.circle(226, 242, 16, WHITE)
    pen.rrect(392, 160, 444, 192, 10, YELLOW)
    shine(pen, 90, 170, 24, 11, -30, opacity=0.7)


def draw_coffee(pen: Pen) -> None:
    # Handle: a thick ring on the right; its hole is white like the die-cut border around it.
    pen.circle(398, 300, 82, "#3BA98F")
    pen.circle(398, 300, 46, WHITE)
    # Mug body: square shoulders, rounded bottom.
    pen.poly([(100, 182), (412, 182), (390, 440), (122, 440)], MINT, radius=[0, 0, 48, 48])
    # Rim, coffee surface and a latte-art heart.
    pen.ellipse(256, 182, 160, 38, "#3BA98F")
    pen.ellipse(256, 186, 138, 27, BROWN)
    hp = heart_points(256, 182, 2.1)
    pen.poly([(x, 182 + (y - 182) * 0.55) for x, y in hp], "#F3D2B3")
    # Steam: three soft waves.
    for x in (196, 256, 316):
        wave = [(x + 13 * math.sin(t), 126 - 15 * t) for t in np.linspace(0.0, 2 * math.pi, 40)]
        pen.stroke(wave, 16, "#C9B8AE")
    shine(pen, 150, 300, 14, 50, 8, opacity=0.55)


def draw_leaf(pen: Pen) -> None:
    n = 120
    upper, lower = [], []
    for i in range(n + 1):
        x = -1 + 2 * i / n
        w = (1 - x * x) ** 0.85 * 0.46
        upper.append((x, -w))
        lower.append((x, w))
    outline = upper + lower[::-1][1:-1]
    ang = math.radians(-40)
    cx, cy, s = 266, 236, 230

    def tf(x: float, y: float) -> Point:
        return (
            cx + s * (x * math.cos(ang) - y * math.sin(ang)),
            cy + s * (x * math.sin(ang) + y * math.cos(ang)),
        )

    pen.poly([tf(x, y) for x, y in outline], GREEN)
    with pen.layer(clip=True) as lp:
        lp.poly([tf(-1.2, 0), tf(1.2, 0), tf(1.2, 1), tf(-1.2, 1)], GREEN_DARK)
    pen.stroke([tf(-0.86, 0), tf(-1.1, 0.06), tf(-1.34, 0.2)], 24, "#238A47")
    pen.stroke([tf(-0.82, 0), tf(0.8, 0)], 10, "#D8F5DF")
    for x in (-0.55, -0.1, 0.35):
        pen.stroke([tf(x, 0), tf(x + 0.28, -0.26)], 8, "#D8F5DF")
        pen.stroke([tf(x, 0), tf(x + 0.28, 0.26)], 8, "#BDEBC8")


def draw_music_note(pen: Pen) -> None:
    pen.poly([(200, 100), (452, 44), (452, 124), (200, 180)], PURPLE, radius=10)
    pen.rrect(186, 110, 222, 400, 12, PURPLE)
    pen.rrect(416, 56, 452, 350, 12, PURPLE)
    pen.ellipse(150, 402, 74, 54, PURPLE, -22)
    pen.ellipse(380, 352, 74, 54, PURPLE, -22)
    shine(pen, 125, 388, 24, 12, -22, opacity=0.7)
    shine(pen, 355, 338, 24, 12, -22, opacity=0.7)


def draw_gift(pen: Pen) -> None:
    # Bow loops first so the lid covers their ends.
    for sx in (-1, 1):
        pen.ellipse(256 + sx * 78, 128, 86, 50, YELLOW, sx * 28)
        pen.ellipse(256 + sx * 86, 132, 40, 20, AMBER, sx * 28)
    pen.rrect(84, 236, 428, 476, 26, "#FF5C8A")
    pen.rrect(60, 170, 452, 256, 24, "#FF7AA2")
    with pen.layer(clip=True) as lp:
        lp.rrect(60, 236, 452, 256, 0, "#E94B78")
    pen.rrect(224, 170, 288, 476, 0, YELLOW)
    pen.circle(256, 160, 34, "#FFC21A")
    shine(pen, 110, 196, 26, 9, 0, opacity=0.6)


@dataclass(frozen=True)
class Sticker:
    id: str
    en: str
    zh: str
    draw: Callable[[Pen], None]
    scale: float
    tags: list[str] = field(default_factory=list)


STICKERS: list[Sticker] = [
    Sticker("heart", "Heart", "爱心", draw_heart, 0.25, ["love", "like"]),
    Sticker("star", "Star", "星星", draw_star, 0.22, ["star", "favourite"]),
    Sticker("sparkle", "Sparkle", "闪闪", draw_sparkle, 0.18, ["sparkle", "shine", "cute"]),
    Sticker("sun", "Sun", "太阳", draw_sun, 0.28, ["weather", "sunny", "cute"]),
    Sticker("cloud", "Cloud", "云朵", draw_cloud, 0.3, ["weather", "sky", "cute"]),
    Sticker("flower", "Flower", "小花", draw_flower, 0.22, ["flower", "spring", "nature"]),
    Sticker("rainbow", "Rainbow", "彩虹", draw_rainbow, 0.35, ["weather", "happy", "colourful"]),
    Sticker("speech-bubble", "Speech bubble", "对话框", draw_speech_bubble, 0.3, ["chat", "comment"]),
    Sticker("arrow", "Arrow", "箭头", draw_arrow, 0.25, ["pointer", "direction"]),
    Sticker("crown", "Crown", "皇冠", draw_crown, 0.25, ["queen", "best", "royal"]),
    Sticker("lightning", "Lightning", "闪电", draw_lightning, 0.18, ["energy", "flash"]),
    Sticker("smiley", "Smiley", "笑脸", draw_smiley, 0.22, ["face", "happy", "emoji"]),
    Sticker("pin", "Location pin", "定位", draw_pin, 0.18, ["location", "travel", "map"]),
    Sticker("camera", "Camera", "相机", draw_camera, 0.25, ["photo", "travel"]),
    Sticker("coffee", "Coffee", "咖啡", draw_coffee, 0.22, ["cafe", "drink", "food"]),
    Sticker("leaf", "Leaf", "叶子", draw_leaf, 0.18, ["nature", "green", "plant"]),
    Sticker("music-note", "Music note", "音符", draw_music_note, 0.18, ["music", "song"]),
    Sticker("gift", "Gift", "礼物", draw_gift, 0.22, ["present", "birthday", "holiday"]),
]

PACK = {
    "id": "starter",
    "version": "1.0.0",
    "title_en": "Starter stickers",
    "title_zh": "基础贴纸",
    "author": "notes-media",
    "license": "CC0-1.0",
    "description": f"Flat die-cut stickers drawn by {SCRIPT_NAME}.",
}


# --------------------------------------------------------------------------------------------------
# Rendering: fit, die-cut border, shadow, downsample.
# --------------------------------------------------------------------------------------------------


def outside_distance(mask: np.ndarray, cap: int) -> np.ndarray:
    """Euclidean distance from every pixel to the nearest True pixel of mask, exact up to cap."""
    w = mask.shape[1]
    big = 10**6
    idx = np.arange(w)
    prev = np.maximum.accumulate(np.where(mask, idx, -big), axis=1)
    nxt = np.minimum.accumulate(np.where(mask, idx, big)[:, ::-1], axis=1)[:, ::-1]
    hd = np.minimum(np.minimum(idx - prev, nxt - idx), cap + 1).astype(np.float32)
    h2 = hd * hd
    d2 = h2.copy()
    for dy in range(1, cap + 1):
        c = np.float32(dy * dy)
        np.minimum(d2[dy:], h2[:-dy] + c, out=d2[dy:])
        np.minimum(d2[:-dy], h2[dy:] + c, out=d2[:-dy])
    return np.sqrt(d2)


def downsample(img: Image.Image, size: tuple[int, int]) -> Image.Image:
    """LANCZOS downsample, except that pixels whose whole source block is one flat colour keep it.

    LANCZOS gives the best anti-aliased edges, but its ringing leaves faint ripples in the flat
    areas next to every edge; they are invisible yet double the PNG size. Snapping pixels that
    come from a uniform block back to that exact colour removes the ripples and keeps the edges.
    """
    small = np.array(img.resize(size, Image.Resampling.LANCZOS))
    w, h = size
    blocks = np.asarray(img).reshape(h, SS, w, SS, 4)
    first = blocks[:, :1, :, :1, :]
    flat = np.all(blocks == first, axis=(1, 3, 4))
    colour = first[:, 0, :, 0, :].copy()
    colour[colour[..., 3] == 0] = 0  # fully transparent: store as transparent black, like LANCZOS does
    small[flat] = colour[flat]
    return Image.fromarray(small, "RGBA")


def design_bbox(sticker: Sticker) -> tuple[float, float, float, float]:
    """Bounding box of a drawing in design units (measured on a 1× render with generous padding)."""
    pad = 256
    probe = Image.new("RGBA", (512 + 2 * pad, 512 + 2 * pad), (0, 0, 0, 0))
    sticker.draw(Pen(probe, 1.0, (-pad, -pad)))
    box = probe.getchannel("A").point(lambda v: 255 if v >= 128 else 0).getbbox()
    if box is None:
        raise ValueError(f"sticker {sticker.id!r} draws nothing")
    x0, y0, x1, y1 = box
    return (x0 - pad, y0 - pad, x1 - pad, y1 - pad)


def render(sticker: Sticker) -> Image.Image:
    x0, y0, x1, y1 = design_bbox(sticker)
    bw, bh = x1 - x0, y1 - y0
    fit = (SIZE - 2 * MARGIN) / max(bw, bh)
    width = round(bw * fit) + 2 * MARGIN
    height = round(bh * fit) + 2 * MARGIN
    # Centre the art exactly within the canvas.
    ox = x0 - ((width - bw * fit) / 2) / fit
    oy = y0 - ((height - bh * fit) / 2) / fit

    art = Image.new("RGBA", (width * SS, height * SS), (0, 0, 0, 0))
    sticker.draw(Pen(art, fit * SS, (ox, oy)))

    # Die-cut border: everything within BORDER px of the art becomes white.
    alpha = np.asarray(art.getchannel("A"))
    cap = BORDER * SS + 2
    dist = outside_distance(alpha >= 128, cap)
    border = np.clip(BORDER * SS - dist + 0.5, 0.0, 1.0)
    border_alpha = Image.fromarray(np.round(border * 255).astype(np.uint8), "L")
    base = Image.new("RGBA", art.size, (255, 255, 255, 255))
    base.putalpha(border_alpha)
    base.alpha_composite(art)
    sticker_img = downsample(base, (width, height))

    # Soft drop shadow from the sticker's silhouette.
    sil = sticker_img.getchannel("A")
    shadow_a = Image.new("L", sil.size, 0)
    shadow_a.paste(sil, (0, SHADOW_OFFSET))
    shadow_a = shadow_a.filter(ImageFilter.GaussianBlur(SHADOW_BLUR))
    shadow_a = shadow_a.point(lambda v: round(v * SHADOW_ALPHA))
    out = Image.new("RGBA", sil.size, (*SHADOW_RGB, 0))
    out.putalpha(shadow_a)
    out.alpha_composite(sticker_img)
    return out


def png_bytes(img: Image.Image) -> bytes:
    buf = io.BytesIO()
    img.save(buf, format="PNG", optimize=True)
    return buf.getvalue()


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def manifest_text() -> str:
    p = PACK
    lines = [
        f"# Generated by {SCRIPT_NAME}; do not edit by hand, edit the script and re-run it.",
        "[pack]",
        f"id = {toml_str(p['id'])}",
        f"version = {toml_str(p['version'])}",
        f"title = {{ en = {toml_str(p['title_en'])}, zh = {toml_str(p['title_zh'])} }}",
        f"author = {toml_str(p['author'])}",
        f"license = {toml_str(p['license'])}",
        f"description = {toml_str(p['description'])}",
    ]
    for s in STICKERS:
        tags = ", ".join(toml_str(t) for t in s.tags)
        lines += [
            "",
            "[[stickers]]",
            f"id = {toml_str(s.id)}",
            f"title = {{ en = {toml_str(s.en)}, zh = {toml_str(s.zh)} }}",
            f"file = {toml_str(f'{s.id}.png')}",
            f"scale = {s.scale}",
            f"tags = [{tags}]",
        ]
    return "\n".join(lines) + "\n"


def write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="pack folder (default: %(default)s)")
    parser.add_argument("--only", nargs="*", default=None, help="render only these sticker ids (for tuning)")
    args = parser.parse_args(argv)
    out: Path = args.out
    ids = [s.id for s in STICKERS]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate sticker ids")
    out.mkdir(parents=True, exist_ok=True)
    for s in STICKERS:
        if args.only and s.id not in args.only:
            continue
        write_if_changed(out / f"{s.id}.png", png_bytes(render(s)))
    if not args.only:
        # Remove images of stickers that no longer exist, so the folder matches the manifest.
        for stale in sorted(out.glob("*.png")):
            if stale.stem not in ids:
                stale.unlink()
    write_if_changed(out / "pack.toml", manifest_text().encode("utf-8"))
    print(f"wrote {len(STICKERS)} stickers to {out}")


if __name__ == "__main__":
    main()
