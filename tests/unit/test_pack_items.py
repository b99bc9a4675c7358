"""Pack format v1 items beyond the basics: Hald CLUT looks, sticker anchors and safe areas."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media_service.errors import PackError
from media_service.geometry import Margins, sticker_placement
from media_service.packs import load_registry
from media_service.packs.cube import identity_table, load_hald, load_lut, parse_cube
from media_service.packs.validate import validate
from tests.support.packs import PACK_HEADER, cube_text, warm


def hald_png(path: Path, level: int, fn: object = None) -> Path:
    """A Hald CLUT written the way ffmpeg's haldclutsrc lays it out, optionally through ``fn``."""
    n = level * level
    table = identity_table(n)
    if callable(fn):
        table = np.apply_along_axis(lambda rgb: np.array(fn(*rgb)), -1, table)
    Image.fromarray(np.round(table.reshape(level**3, level**3, 3) * 255).astype(np.uint8)).save(path)
    return path


def test_hald_identity_from_ffmpeg_reads_as_identity(tmp_path: Path) -> None:
    png = tmp_path / "id.png"
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i", "haldclutsrc=level=6",
                    "-frames:v", "1", str(png)], check=True, timeout=30)
    lut = load_hald(png)
    assert lut.size == 36
    assert np.abs(lut.table - identity_table(36)).max() < 1 / 255 + 1e-6


def test_hald_and_cube_of_the_same_look_agree(tmp_path: Path) -> None:
    hald = load_lut(hald_png(tmp_path / "warm.png", 3, warm))
    cube = parse_cube(cube_text(9, warm))
    assert hald.size == cube.size == 9
    assert np.abs(hald.table - cube.table).max() < 1 / 255 + 1e-6


@pytest.mark.parametrize(("make", "message"), [
    (lambda p: Image.new("RGB", (100, 100)).save(p, "PNG"), "not a Hald CLUT"),
    (lambda p: Image.new("RGB", (64, 32)).save(p, "PNG"), "not a Hald CLUT"),
    (lambda p: Image.new("RGB", (729, 729)).save(p, "PNG"), "Hald level 9 is outside 2..8"),
    (lambda p: Image.new("RGB", (8, 8)).save(p, "JPEG"), "must be a PNG"),
    (lambda p: p.write_bytes(b"\x89PNG\r\n\x1a\nbroken"), "not a readable PNG"),
])
def test_hald_problems(tmp_path: Path, make: object, message: str) -> None:
    png = tmp_path / "look.png"
    make(png)  # type: ignore[operator]
    with pytest.raises(PackError, match=message):
        load_hald(png)


def test_look_table_of_another_kind_is_refused(tmp_path: Path) -> None:
    (tmp_path / "look.3dl").write_text("x")
    with pytest.raises(PackError, match=r"\.cube file or a Hald CLUT \.png"):
        load_lut(tmp_path / "look.3dl")


def test_hald_look_in_a_pack(tmp_path: Path) -> None:
    pack = tmp_path / "haldpack"
    pack.mkdir()
    hald_png(pack / "warm.png", 4, warm)
    (pack / "pack.toml").write_text(PACK_HEADER.format(id="haldpack") + """
[[looks]]
id = "warm"
title = { en = "Warm", zh = "暖" }
lut = "warm.png"
""")
    registry = load_registry([tmp_path], [])
    assert registry.looks["haldpack/warm"].lut.size == 16
    pixel = Image.new("RGB", (1, 1), (128, 128, 128)).filter(registry.look_filter("haldpack/warm", 1.0))
    r, _, b = pixel.getpixel((0, 0))  # type: ignore[misc]
    assert r > 160 and b < 100


def sticker_pack(root: Path, extra: str) -> Path:
    pack = root / "pins"
    pack.mkdir(parents=True, exist_ok=True)
    Image.new("RGBA", (20, 10), (255, 0, 0, 255)).save(pack / "red.png")
    (pack / "pack.toml").write_text(PACK_HEADER.format(id="pins") + f"""
[[stickers]]
id = "pin"
title = {{ en = "Pin", zh = "钉" }}
file = "red.png"
{extra}
""")
    return root


@pytest.mark.parametrize(("extra", "expected"), [
    ("", ((0.5, 0.5), None)),
    ('anchor = "bottom-right"', ((1.0, 1.0), None)),
    ("anchor = [0.25, 0.9]", ((0.25, 0.9), None)),
    ("safe_area = { top = 0.1, bottom = 0.15 }", ((0.5, 0.5), Margins(0.0, 0.1, 0.0, 0.15))),
])
def test_anchor_and_safe_area_read(tmp_path: Path, extra: str, expected: object) -> None:
    item = load_registry([], [sticker_pack(tmp_path, extra)]).stickers["pins/pin"]
    assert (item.anchor, item.safe_area) == expected
    public = item.public()
    assert public["anchor"] == list(expected[0])  # type: ignore[index]


@pytest.mark.parametrize(("extra", "message"), [
    ('anchor = "middle"', "anchor must be one of center"),
    ("anchor = [0.5, 1.5]", "anchor must be one of center"),
    ("anchor = [0.5]", "anchor must be one of center"),
    ("safe_area = { top = 0.6 }", r"safe_area.top = 0.6 is outside 0.0..0.45"),
    ("safe_area = { middle = 0.1 }", "safe_area must be a table of margins"),
    ("safe_area = 0.1", "safe_area must be a table of margins"),
])
def test_anchor_and_safe_area_problems_name_their_line(tmp_path: Path, extra: str, message: str) -> None:
    _, problems = validate([sticker_pack(tmp_path, extra) / "pins"])
    assert len(problems) == 1, problems
    assert problems[0].line == 12
    assert re.search(message, problems[0].problem), problems[0].problem


def test_anchor_rotation_keeps_the_anchor_still() -> None:
    # A 100×50 sticker pinned by its bottom centre at (500, 500); turned 90° clockwise its body lies right.
    p = sticker_placement(1000, 1000, 200, 100, x=0.5, y=0.5, scale=0.1, rotation=90, anchor=(0.5, 1.0))
    assert (p.box.left, p.box.top, p.box.width, p.box.height) == (500, 450, 50, 100)
    p = sticker_placement(1000, 1000, 200, 100, x=0.5, y=0.5, scale=0.1, rotation=0, anchor=(0.0, 0.0))
    assert (p.box.left, p.box.top) == (500, 500)


def test_safe_area_moves_the_least_and_centres_what_cannot_fit() -> None:
    safe = Margins(left=0.1, top=0.1, right=0.1, bottom=0.2)
    p = sticker_placement(1000, 1000, 200, 100, x=0.99, y=0.99, scale=0.2, rotation=0, safe_area=safe)
    assert (p.box.right, p.box.bottom) == (900, 800)
    inside = sticker_placement(1000, 1000, 200, 100, x=0.5, y=0.5, scale=0.2, rotation=0, safe_area=safe)
    assert (inside.box.left, inside.box.top) == (400, 450)  # already inside: not moved
    wide = sticker_placement(1000, 1000, 200, 100, x=0.0, y=0.5, scale=1.0, rotation=0, safe_area=safe)
    assert wide.box.left == 0 and wide.box.width == 1000  # wider than the safe area: centred on it


def look_pack_with_preview(root: Path, preview_line: str) -> Path:
    pack = root / "withprev"
    pack.mkdir(parents=True, exist_ok=True)
    (pack / "id.cube").write_text(cube_text(2))
    (pack / "pack.toml").write_text(PACK_HEADER.format(id="withprev") + f"""
[[looks]]
id = "soft"
title = {{ en = "Soft", zh = "柔" }}
lut = "id.cube"
{preview_line}
""")
    return pack


def test_look_preview_is_optional_and_checked(tmp_path: Path) -> None:
    pack = look_pack_with_preview(tmp_path / "a", 'preview = "before-after.jpg"')
    Image.new("RGB", (800, 600), (200, 120, 90)).save(pack / "before-after.jpg")
    registry, problems = validate([pack])
    assert problems == [] and registry.looks["withprev/soft"].preview == (pack / "before-after.jpg").resolve()
    pack = look_pack_with_preview(tmp_path / "b", 'preview = "p.gif"')
    Image.new("RGB", (8, 8)).save(pack / "p.gif")
    _, problems = validate([pack])
    assert len(problems) == 1 and problems[0].line == 8 and "JPEG, PNG or WebP" in problems[0].problem
    pack = look_pack_with_preview(tmp_path / "c", 'preview = "missing.jpg"')
    _, problems = validate([pack])
    assert len(problems) == 1 and problems[0].line == 12 and "does not exist" in problems[0].problem
