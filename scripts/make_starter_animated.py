#!/usr/bin/env python3
"""Generate the animated starter stickers (``stickers/animated/``): APNG loops made from the static starter
stickers, for video notes (on photos an animated sticker shows its first frame). CC0-1.0, deterministic.

Usage::

    python scripts/make_starter_animated.py [--out DIR]
"""

from __future__ import annotations

import argparse
import io
import math
from pathlib import Path

from PIL import Image

ROOT = Path(__file__).resolve().parent.parent
STATIC = ROOT / "stickers" / "starter"
DEFAULT_OUT = ROOT / "stickers" / "animated"
FRAMES = 16
FRAME_MS = 70
SIDE = 256


def _fit(img: Image.Image, scale: float, angle: float = 0.0, alpha: float = 1.0) -> Image.Image:
    """The sticker scaled and turned about its centre on a fixed transparent canvas."""
    base = img.copy()
    base.thumbnail((SIDE, SIDE), Image.Resampling.LANCZOS)
    w, h = max(1, round(base.width * scale)), max(1, round(base.height * scale))
    art = base.resize((w, h), Image.Resampling.LANCZOS)
    if angle:
        art = art.rotate(angle, resample=Image.Resampling.BICUBIC, expand=True)
    if alpha < 1.0:
        art.putalpha(art.getchannel("A").point(lambda a: round(a * alpha)))
    canvas = Image.new("RGBA", (SIDE, SIDE), (0, 0, 0, 0))
    canvas.alpha_composite(art, ((SIDE - art.width) // 2, (SIDE - art.height) // 2))
    return canvas


def heart_beat(heart: Image.Image) -> list[Image.Image]:
    # Two quick beats then a rest, like a pulse.
    scales = [0.82 + 0.16 * max(0.0, math.sin(2 * math.pi * i / (FRAMES / 2))) for i in range(FRAMES)]
    return [_fit(heart, s) for s in scales]


def twinkle(sparkle: Image.Image) -> list[Image.Image]:
    return [_fit(sparkle, 0.75 + 0.2 * math.sin(2 * math.pi * i / FRAMES), angle=360 * i / FRAMES / 4,
                 alpha=0.7 + 0.3 * math.cos(2 * math.pi * i / FRAMES)) for i in range(FRAMES)]


ANIMATIONS = [
    ("heart-beat", "Beating heart", "心跳", "heart.png", heart_beat, 0.22),
    ("twinkle", "Twinkle", "闪闪", "sparkle.png", twinkle, 0.2),
]

MANIFEST = """[pack]
id = "animated"
version = "1.0.0"
title = {{ en = "Animated starters", zh = "动态贴纸" }}
author = "notes-media"
license = "CC0-1.0"
description = "Looping stickers for video notes, made by scripts/make_starter_animated.py."
{items}"""

ITEM = """
[[stickers]]
id = "{id}"
title = {{ en = "{en}", zh = "{zh}" }}
file = "{id}.png"
scale = {scale}
tags = ["animated"]
"""


def apng_bytes(frames: list[Image.Image]) -> bytes:
    buf = io.BytesIO()
    frames[0].save(buf, "PNG", save_all=True, append_images=frames[1:], duration=FRAME_MS, loop=0,
                   disposal=1, blend=0, optimize=True)
    return buf.getvalue()


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT)
    out: Path = parser.parse_args(argv).out
    out.mkdir(parents=True, exist_ok=True)
    items = []
    for sticker_id, en, zh, source, animate, scale in ANIMATIONS:
        with Image.open(STATIC / source) as img:
            frames = animate(img.convert("RGBA"))
        (out / f"{sticker_id}.png").write_bytes(apng_bytes(frames))
        items.append(ITEM.format(id=sticker_id, en=en, zh=zh, scale=scale))
    (out / "pack.toml").write_text(MANIFEST.format(items="".join(items)))


if __name__ == "__main__":
    main()
