from pathlib import Path

import pytest
from PIL import Image

from media_service.errors import PackError
from media_service.packs import load_registry
from tests.support.packs import PACK_HEADER, write_look_pack, write_sticker_pack

REPO = Path(__file__).resolve().parents[2]


def test_loads_test_packs(tmp_path: Path) -> None:
    reg = load_registry([write_look_pack(tmp_path / "f")], [write_sticker_pack(tmp_path / "s")])
    assert set(reg.looks) == {"tlooks/warm", "tlooks/identity"}
    assert reg.has_sticker("tstickers/red") and not reg.has_sticker("tstickers/blue")
    assert reg.stickers["tstickers/red"].scale == 0.2
    assert reg.looks["tlooks/warm"].public()["title"] == {"en": "Warm", "zh": "暖"}
    img = reg.sticker_image("tstickers/red")
    assert img.mode == "RGBA" and img.size == (200, 100)
    assert reg.look_filter("tlooks/warm", 0.5) is reg.look_filter("tlooks/warm", 0.5)


def test_repo_packs_load() -> None:
    """Every pack in the repository is valid: a broken designer change fails the build."""
    reg = load_registry([REPO / "filters"], [REPO / "stickers"])
    assert len(reg.looks) >= 8
    assert len(reg.stickers) >= 12


def _pack(tmp_path: Path, body: str, kind_dir: str = "f", pack_id: str = "p") -> Path:
    pack = tmp_path / kind_dir / pack_id
    (pack / "luts").mkdir(parents=True)
    (pack / "luts" / "a.cube").write_text("LUT_3D_SIZE 2\n" + "0 0 0\n" * 8)
    img = Image.new("RGBA", (10, 10), (0, 0, 0, 0))
    img.save(pack / "a.png")
    Image.new("RGB", (10, 10)).save(pack / "opaque.png")
    Image.new("RGBA", (10, 10)).save(pack / "sticker.gif")
    (pack / "pack.toml").write_text(body)
    return tmp_path / kind_dir


LOOK = '\n[[looks]]\nid = "a"\ntitle = { en = "A", zh = "甲" }\nlut = "luts/a.cube"\n'
STICKER = '\n[[stickers]]\nid = "a"\ntitle = { en = "A", zh = "甲" }\nfile = "a.png"\n'


@pytest.mark.parametrize(
    ("body", "kind", "line", "words"),
    [
        (PACK_HEADER.format(id="p") + LOOK + "intensity = 2\n", "looks", 8, "outside 0.0..1.0"),
        (PACK_HEADER.format(id="p") + LOOK + LOOK, "looks", 13, "duplicate id 'a'"),
        (PACK_HEADER.format(id="p") + LOOK.replace("a.cube", "missing.cube"), "looks", 8, "does not exist"),
        (PACK_HEADER.format(id="p") + LOOK.replace("luts/a.cube", "../../../etc/passwd"), "looks", 8,
         "inside the pack"),
        (PACK_HEADER.format(id="p") + LOOK + "colour = 1\n", "looks", 12, "unknown key 'colour'"),
        (PACK_HEADER.format(id="p") + LOOK.replace(', zh = "甲"', ""), "looks", 8, "'en' and 'zh'"),
        (PACK_HEADER.format(id="p").replace("1.0.0", "one"), "looks", 3, "not semver"),
        (PACK_HEADER.format(id="p") + "[[looks]\n", "looks", 7, "TOML syntax"),
        (PACK_HEADER.format(id="p") + STICKER.replace("a.png", "opaque.png"), "stickers", 8, "alpha"),
        (PACK_HEADER.format(id="p") + STICKER.replace("a.png", "sticker.gif"), "stickers", 8, "PNG or WebP"),
        (PACK_HEADER.format(id="p") + STICKER + "scale = 0\n", "stickers", 8, "outside 0.01..1.0"),
        (PACK_HEADER.format(id="p") + LOOK, "stickers", 8, "cannot hold [[looks]]"),
        (PACK_HEADER.format(id="q") + LOOK, "looks", 2, "match its folder"),
    ],
)
def test_broken_pack_fails_with_file_and_line(tmp_path: Path, body: str, kind: str, line: int,
                                              words: str) -> None:
    root = _pack(tmp_path, body, "f" if kind == "looks" else "s")
    with pytest.raises(PackError) as info:
        if kind == "looks":
            load_registry([root], [])
        else:
            load_registry([], [root])
    assert words in info.value.problem
    assert info.value.path.endswith("pack.toml")
    assert info.value.line == line, str(info.value)


def test_broken_cube_inside_pack_names_the_cube(tmp_path: Path) -> None:
    root = _pack(tmp_path, PACK_HEADER.format(id="p") + LOOK)
    (root / "p" / "luts" / "a.cube").write_text("LUT_3D_SIZE 2\n0 0 0\nNaN 0 0\n")
    with pytest.raises(PackError) as info:
        load_registry([root], [])
    assert info.value.path.endswith("a.cube") and info.value.line == 3
