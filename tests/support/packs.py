"""Small packs written by the tests: a warm and an identity look, and a solid red square sticker."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw

PACK_HEADER = """[pack]
id = "{id}"
version = "1.0.0"
title = {{ en = "Test", zh = "测试" }}
author = "tests"
license = "CC0-1.0"
"""


def cube_text(size: int, fn: object = None, *, title: str = "t") -> str:
    axis = np.linspace(0.0, 1.0, size)
    rows = []
    for b in axis:
        for g in axis:
            for r in axis:
                rr, gg, bb = fn(r, g, b) if callable(fn) else (r, g, b)
                rows.append(f"{rr:.6f} {gg:.6f} {bb:.6f}")
    return f'TITLE "{title}"\nLUT_3D_SIZE {size}\n' + "\n".join(rows) + "\n"


def warm(r: float, g: float, b: float) -> tuple[float, float, float]:
    return min(1.0, r + 0.15), g, max(0.0, b - 0.15)


def write_look_pack(root: Path, pack_id: str = "tlooks") -> Path:
    pack = root / pack_id
    (pack / "luts").mkdir(parents=True, exist_ok=True)
    (pack / "luts" / "warm.cube").write_text(cube_text(9, warm))
    (pack / "luts" / "identity.cube").write_text(cube_text(2))
    (pack / "pack.toml").write_text(PACK_HEADER.format(id=pack_id) + """
[[looks]]
id = "warm"
title = { en = "Warm", zh = "暖" }
lut = "luts/warm.cube"
intensity = 1.0

[[looks]]
id = "identity"
title = { en = "Identity", zh = "原图" }
lut = "luts/identity.cube"
intensity = 1.0
""")
    return root


def write_sticker_pack(root: Path, pack_id: str = "tstickers") -> Path:
    pack = root / pack_id
    pack.mkdir(parents=True, exist_ok=True)
    img = Image.new("RGBA", (200, 100), (0, 0, 0, 0))
    ImageDraw.Draw(img).rectangle((0, 0, 199, 99), fill=(255, 0, 0, 255))
    img.save(pack / "red.png")
    (pack / "pack.toml").write_text(PACK_HEADER.format(id=pack_id) + """
[[stickers]]
id = "red"
title = { en = "Red bar", zh = "红条" }
file = "red.png"
scale = 0.2
""")
    return root
