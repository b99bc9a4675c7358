"""The committed starter packs (filters/starter, stickers/starter) are exactly what their scripts make.

Uses only numpy, Pillow and tomllib: it checks the data files themselves, not the service that loads
them (that has its own tests).
"""

from __future__ import annotations

import io
import math
import re
import subprocess
import sys
import tomllib
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

REPO = Path(__file__).resolve().parents[2]
LOOKS_DIR = REPO / "filters" / "starter"
STICKERS_DIR = REPO / "stickers" / "starter"
LOOKS_SCRIPT = REPO / "scripts" / "make_starter_looks.py"
STICKERS_SCRIPT = REPO / "scripts" / "make_starter_stickers.py"

N = 33
ID_RE = re.compile(r"^[a-z0-9_-]{1,40}$")
SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
PACK_KEYS = {"id", "version", "title", "author", "license", "description"}
LOOK_KEYS = {"id", "title", "lut", "intensity", "tags"}
STICKER_KEYS = {"id", "title", "file", "scale", "tags"}
REQUIRED_LOOKS = {"warm", "cool", "faded-film", "bw", "teal-orange", "pastel"}
REQUIRED_STICKERS = {"heart", "star", "sparkle", "sun", "cloud", "flower", "rainbow", "speech-bubble"}
HEART_RGB = (0xFF, 0x3B, 0x5C)


def _run(script: Path, out: Path) -> Path:
    subprocess.run([sys.executable, str(script), "--out", str(out)], check=True, capture_output=True, timeout=240)
    return out


@pytest.fixture(scope="module")
def regenerated(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    base = tmp_path_factory.mktemp("starter")
    return {
        "looks": _run(LOOKS_SCRIPT, base / "looks"),
        "stickers": _run(STICKERS_SCRIPT, base / "stickers"),
    }


def _files(root: Path) -> dict[str, bytes]:
    """Generated files under root by relative path (the hand-written README is not generated)."""
    return {
        p.relative_to(root).as_posix(): p.read_bytes()
        for p in sorted(root.rglob("*"))
        if p.is_file() and p.name != "README.md"
    }


def _manifest(root: Path) -> dict:
    return tomllib.loads((root / "pack.toml").read_text(encoding="utf-8"))


def _parse_cube(path: Path) -> np.ndarray:
    """Rows of the table as an (N, N, N, 3) array indexed [b, g, r] (red changes fastest)."""
    size = None
    rows: list[list[float]] = []
    for line in path.read_text(encoding="ascii").splitlines():
        line = line.strip()
        if not line or line.startswith("#"):
            continue
        head = line.split()[0]
        if head == "TITLE":
            continue
        if head == "LUT_3D_SIZE":
            size = int(line.split()[1])
            continue
        if head in ("DOMAIN_MIN", "DOMAIN_MAX"):
            want = "0.0" if head == "DOMAIN_MIN" else "1.0"
            assert [float(v) for v in line.split()[1:]] == [float(want)] * 3, (path, line)
            continue
        assert not rows or head[0] in "0123456789-.", (path, line)
        parts = line.split()
        assert len(parts) == 3, (path, line)
        rows.append([float(v) for v in parts])
    assert size == N, path
    table = np.array(rows)
    assert table.shape == (N**3, 3), (path, table.shape)
    return table.reshape(N, N, N, 3)


def _looks() -> list[dict]:
    return list(_manifest(LOOKS_DIR)["looks"])


def _stickers() -> list[dict]:
    return list(_manifest(STICKERS_DIR)["stickers"])


# ---- the scripts are deterministic and the committed files are their output ---------------------


def test_looks_script_reproduces_committed_files(regenerated: dict[str, Path]) -> None:
    new, old = _files(regenerated["looks"]), _files(LOOKS_DIR)
    assert sorted(new) == sorted(old)
    for name in new:
        assert new[name] == old[name], f"{name} differs: re-run {LOOKS_SCRIPT.name} and commit"


def test_stickers_script_reproduces_committed_files(regenerated: dict[str, Path]) -> None:
    new, old = _files(regenerated["stickers"]), _files(STICKERS_DIR)
    assert sorted(new) == sorted(old)
    for name in new:
        if new[name] == old[name]:
            continue
        # Different bytes for the same pixels can only come from another zlib build; that is not
        # drift in the stickers themselves.
        assert name.endswith(".png"), f"{name} differs: re-run {STICKERS_SCRIPT.name} and commit"
        a = Image.open(io.BytesIO(new[name]))
        b = Image.open(io.BytesIO(old[name]))
        assert a.mode == b.mode and a.size == b.size, name
        assert np.array_equal(np.asarray(a), np.asarray(b)), f"{name} differs: re-run and commit"


# ---- manifests ------------------------------------------------------------------------------------


def _check_pack_table(doc: dict, kind: str) -> None:
    assert set(doc) == {"pack", kind}, "a pack holds either looks or stickers"
    pack = doc["pack"]
    assert set(pack) <= PACK_KEYS and {"id", "version", "title", "author", "license"} <= set(pack)
    assert pack["id"] == "starter" and ID_RE.match(pack["id"])
    assert SEMVER_RE.match(pack["version"])
    assert pack["license"] == "CC0-1.0"
    assert set(pack["title"]) == {"en", "zh"} and all(pack["title"].values())


def _check_item(item: dict, keys: set[str]) -> None:
    assert set(item) <= keys and (keys - {"tags"}) <= set(item), item
    assert ID_RE.match(item["id"]), item["id"]
    assert set(item["title"]) == {"en", "zh"}, item["id"]
    assert item["title"]["en"].strip() and item["title"]["zh"].strip(), item["id"]
    assert re.search(r"[\u4e00-\u9fff]", item["title"]["zh"]), item["id"]
    tags = item.get("tags", [])
    assert isinstance(tags, list) and all(isinstance(t, str) and t for t in tags), item["id"]


def test_looks_manifest_lists_every_lut_and_nothing_else() -> None:
    doc = _manifest(LOOKS_DIR)
    _check_pack_table(doc, "looks")
    looks = doc["looks"]
    ids = [look["id"] for look in looks]
    assert len(ids) == len(set(ids)) >= 10
    assert set(ids) >= REQUIRED_LOOKS
    for look in looks:
        _check_item(look, LOOK_KEYS)
        assert look["lut"] == f"luts/{look['id']}.cube"
        assert (LOOKS_DIR / look["lut"]).is_file()
        assert isinstance(look["intensity"], float) and 0.6 <= look["intensity"] <= 1.0, look["id"]
    on_disk = {p.relative_to(LOOKS_DIR).as_posix() for p in LOOKS_DIR.rglob("*") if p.is_file()}
    assert on_disk == {look["lut"] for look in looks} | {"pack.toml", "README.md"}


def test_stickers_manifest_lists_every_image_and_nothing_else() -> None:
    doc = _manifest(STICKERS_DIR)
    _check_pack_table(doc, "stickers")
    stickers = doc["stickers"]
    ids = [s["id"] for s in stickers]
    assert len(ids) == len(set(ids)) >= 14
    assert set(ids) >= REQUIRED_STICKERS
    for s in stickers:
        _check_item(s, STICKER_KEYS)
        assert s["file"] == f"{s['id']}.png"
        assert (STICKERS_DIR / s["file"]).is_file()
        assert isinstance(s["scale"], float) and 0.15 <= s["scale"] <= 0.35, s["id"]
    on_disk = {p.relative_to(STICKERS_DIR).as_posix() for p in STICKERS_DIR.rglob("*") if p.is_file()}
    assert on_disk == {s["file"] for s in stickers} | {"pack.toml", "README.md"}


# ---- looks ----------------------------------------------------------------------------------------


@pytest.mark.parametrize("look", _looks(), ids=lambda look: look["id"])
def test_cube_is_a_full_finite_table_in_range(look: dict) -> None:
    path = LOOKS_DIR / look["lut"]
    text = path.read_text(encoding="ascii")
    first = text.splitlines()[0]
    assert first.startswith("#") and "make_starter_looks.py" in first and "CC0-1.0" in first
    assert "LUT_3D_SIZE 33" in text and 'TITLE "' in text
    table = _parse_cube(path)
    assert np.all(np.isfinite(table))
    assert table.min() >= 0.0 and table.max() <= 1.0
    # Not the identity, and not extreme: a look is a look, not a colour replacement.
    steps = np.linspace(0.0, 1.0, N)
    b, g, r = np.meshgrid(steps, steps, steps, indexing="ij")
    identity = np.stack([r, g, b], axis=-1)
    change = np.abs(table - identity).mean()
    assert 0.01 < change < 0.3, (look["id"], change)
    # Black stays dark and white stays light.
    assert table[0, 0, 0].max() < 0.25 and table[-1, -1, -1].min() > 0.75, look["id"]


def _mid_grey(look_id: str) -> np.ndarray:
    return _parse_cube(LOOKS_DIR / "luts" / f"{look_id}.cube")[N // 2, N // 2, N // 2]


def _default_intensity(look_id: str) -> float:
    return next(look["intensity"] for look in _looks() if look["id"] == look_id)


@pytest.mark.parametrize("sign, look_id", [(1, "warm"), (-1, "cool")])
def test_warm_and_cool_shift_mid_grey(sign: int, look_id: str) -> None:
    r, g, b = _mid_grey(look_id) - 0.5
    for a in (1.0, _default_intensity(look_id)):
        assert 0.06 <= sign * r * a <= 0.12, (look_id, a, r)
        assert -0.12 <= sign * b * a <= -0.06, (look_id, a, b)
        assert abs(g) < 0.04, (look_id, g)


def test_bw_is_grey_and_contrasty() -> None:
    path = LOOKS_DIR / "luts" / "bw.cube"
    rows = [line.split() for line in path.read_text().splitlines()[-(N**3) :]]
    assert all(r == g == b for r, g, b in rows)  # exactly equal, as written
    table = _parse_cube(path)
    assert np.array_equal(table[..., 0], table[..., 1]) and np.array_equal(table[..., 1], table[..., 2])
    grey = np.array([table[i, i, i, 0] for i in range(N)])
    assert np.all(np.diff(grey) >= 0)  # monotonic
    assert grey[N // 4] < 0.25 - 0.03 and grey[3 * N // 4] > 0.75 + 0.03  # an S-curve: more contrast
    # BT.709 weights: pure green is much lighter than pure blue.
    assert table[0, -1, 0, 0] > table[-1, 0, 0, 0] + 0.3


def test_looks_are_distinguishable() -> None:
    tables = {look["id"]: _parse_cube(LOOKS_DIR / look["lut"]) for look in _looks()}
    ids = sorted(tables)
    for i, a in enumerate(ids):
        for b in ids[i + 1 :]:
            diff = np.abs(tables[a] - tables[b]).mean()
            assert diff > 0.015, (a, b, diff)


# ---- stickers -------------------------------------------------------------------------------------


@pytest.mark.parametrize("sticker", _stickers(), ids=lambda s: s["id"])
def test_sticker_is_rgba_with_transparent_corners(sticker: dict) -> None:
    path = STICKERS_DIR / sticker["file"]
    with Image.open(path) as im:
        assert im.format == "PNG" and im.mode == "RGBA"
        assert max(im.size) == 512 and min(im.size) >= 128
        a = np.asarray(im)
    alpha = a[..., 3]
    for corner in (alpha[0, 0], alpha[0, -1], alpha[-1, 0], alpha[-1, -1]):
        assert corner == 0
    edges = np.concatenate([alpha[0], alpha[-1], alpha[:, 0], alpha[:, -1]])
    assert edges.max() == 0, "the art (with its shadow) must not touch the image edge"
    assert (alpha == 255).mean() > 0.2  # a real, solid sticker
    partial = ((alpha > 0) & (alpha < 255)).mean()
    assert partial > 0.005  # anti-aliased edges and a soft shadow
    assert path.stat().st_size < 80_000


def test_heart_is_a_solid_red_heart() -> None:
    with Image.open(STICKERS_DIR / "heart.png") as im:
        a = np.asarray(im.convert("RGBA")).astype(int)
    h, w = a.shape[:2]
    centre = a[math.floor(0.4 * h) : math.ceil(0.6 * h), math.floor(0.4 * w) : math.ceil(0.6 * w)]
    assert np.all(centre[..., 3] == 255)
    assert np.abs(centre[..., :3] - np.array(HEART_RGB)).max() <= 8
    for y, x in ((0, 0), (0, w - 1), (h - 1, 0), (h - 1, w - 1)):
        assert a[y, x, 3] == 0
