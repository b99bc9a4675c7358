"""`media-service packs preview`: the contact sheet shows what the looks, stickers and tracks really do."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media_service.cli import main
from media_service.geometry import Box
from media_service.packs import preview
from tests.support.packs import PACK_HEADER, cube_text, write_music_pack, write_sticker_pack

pytestmark = pytest.mark.media


def red(_r: float, _g: float, _b: float) -> tuple[float, float, float]:
    return 1.0, 0.0, 0.0


def write_red_look(root: Path) -> Path:
    pack = root / "reds"
    (pack / "luts").mkdir(parents=True)
    (pack / "luts" / "red.cube").write_text(cube_text(5, red))
    (pack / "pack.toml").write_text(PACK_HEADER.format(id="reds") + """
[[looks]]
id = "red"
title = { en = "All red", zh = "全红" }
lut = "luts/red.cube"
intensity = 0.7
""")
    return root


def write_broken_look(root: Path) -> Path:
    pack = root / "broken"
    (pack / "luts").mkdir(parents=True)
    (pack / "luts" / "short.cube").write_text("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7)
    (pack / "pack.toml").write_text(PACK_HEADER.format(id="broken") + """
[[looks]]
id = "short"
title = { en = "Short", zh = "短" }
lut = "luts/short.cube"
""")
    return root


def write_photos(folder: Path) -> Path:
    """Two small photos: a mid grey (no red to begin with) and a blue-green gradient."""
    folder.mkdir(parents=True)
    Image.new("RGB", (160, 120), (128, 128, 128)).save(folder / "a-grey.png")
    x = np.linspace(40, 200, 160, dtype=np.uint8)
    arr = np.stack([np.full((120, 160), 60, np.uint8), np.tile(x, (120, 1)), np.full((120, 160), 180, np.uint8)], -1)
    Image.fromarray(arr).save(folder / "b-gradient.jpg", quality=95)
    return folder


@pytest.fixture(scope="module")
def packs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("packs")
    write_red_look(root)
    write_broken_look(root)
    write_sticker_pack(root)
    write_music_pack(root, frequency=440, seconds=6)
    return root


@pytest.fixture(scope="module")
def sheet_file(packs: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[preview.Sheet, Path]:
    photos = write_photos(tmp_path_factory.mktemp("photos") / "mine")
    sheet = preview.build_sheet([packs], photos, fonts=preview.load_fonts(cjk=False))
    out = preview.write_sheet(sheet, tmp_path_factory.mktemp("out") / "sheet.png")
    return sheet, out


@pytest.fixture(scope="module")
def pixels(sheet_file: tuple[preview.Sheet, Path]) -> np.ndarray:
    with Image.open(sheet_file[1]) as img:
        assert img.format == "PNG"
        return np.asarray(img.convert("RGB")).astype(np.float64)


def cell(pixels: np.ndarray, box: Box, inset: int = 6) -> np.ndarray:
    return pixels[box.top + inset:box.bottom - inset, box.left + inset:box.right - inset]


def redness(region: np.ndarray) -> float:
    """How much red stands out over green and blue, averaged over the region (−255…255)."""
    mean = region.reshape(-1, 3).mean(axis=0)
    return float(mean[0] - (mean[1] + mean[2]) / 2)


def test_sheet_is_a_png_with_every_valid_item(sheet_file: tuple[preview.Sheet, Path]) -> None:
    sheet, out = sheet_file
    with Image.open(out) as img:
        img.verify()
    assert set(sheet.registry.looks) == {"reds/red"}
    assert set(sheet.registry.stickers) == {"tstickers/red"}
    assert set(sheet.registry.tracks) == {"tmusic/tone"}
    names = set(sheet.cells)
    assert {f"look/reds/red/{group}/{column}" for group in ("photo0", "photo1", "video")
            for column in ("original", "100", "50")} <= names
    assert {"sticker/tstickers/red/checker", "sticker/tstickers/red/photo", "track/tmusic/tone/waveform"} <= names


@pytest.mark.parametrize("group", ["photo0", "photo1", "video"])
def test_look_cells_shift_toward_red_and_half_intensity_lies_between(
        sheet_file: tuple[preview.Sheet, Path], pixels: np.ndarray, group: str) -> None:
    cells = sheet_file[0].cells
    original, full, half = (redness(cell(pixels, cells[f"look/reds/red/{group}/{column}"]))
                            for column in ("original", "100", "50"))
    assert full > original + 100, (original, half, full)
    assert original + 20 < half < full - 20, (original, half, full)
    full_mean = cell(pixels, cells[f"look/reds/red/{group}/100"]).reshape(-1, 3).mean(axis=0)
    assert full_mean[0] > 230 and full_mean[1] < 25 and full_mean[2] < 25  # the look says: everything red


def test_video_frame_matches_the_photo_it_was_made_from(sheet_file: tuple[preview.Sheet, Path],
                                                        pixels: np.ndarray) -> None:
    cells = sheet_file[0].cells
    for column in ("original", "100", "50"):
        photo = cell(pixels, cells[f"look/reds/red/photo0/{column}"]).reshape(-1, 3).mean(axis=0)
        video = cell(pixels, cells[f"look/reds/red/video/{column}"]).reshape(-1, 3).mean(axis=0)
        assert np.abs(photo - video).max() < 6, (column, photo, video)


def test_sticker_on_checkerboard_and_on_photo(sheet_file: tuple[preview.Sheet, Path], pixels: np.ndarray) -> None:
    cells = sheet_file[0].cells
    checker = cells["sticker/tstickers/red/checker"]
    centre = pixels[checker.top + checker.height // 2, checker.left + checker.width // 2]
    assert tuple(centre) == (255, 0, 0)
    corners = [pixels[checker.top + dy, checker.left + dx] for dx, dy in ((2, 2), (checker.width - 3, 2),
                                                                        (2, checker.height - 3))]
    greys = {tuple(float(v) for v in c) for c in preview.CHECKER_COLOURS}
    assert all(tuple(c) in greys for c in corners)
    assert len({tuple(c) for c in pixels[checker.top + 2, checker.left:checker.left + 4 * preview.CHECKER]}) == 2
    on_photo = cells["sticker/tstickers/red/photo"]
    centre = pixels[on_photo.top + on_photo.height // 2, on_photo.left + on_photo.width // 2]
    assert centre[0] > 200 and centre[1] < 50 and centre[2] < 50
    beside = pixels[on_photo.top + on_photo.height // 2, on_photo.left + on_photo.width // 2 - 50]
    assert np.abs(beside - 128).max() < 8  # the grey photo around it


def test_track_row_has_a_waveform(sheet_file: tuple[preview.Sheet, Path], pixels: np.ndarray) -> None:
    box = sheet_file[0].cells["track/tmusic/tone/waveform"]
    region = pixels[box.top:box.bottom, box.left:box.right]
    drawn = np.any(region != np.array(preview.PANEL, dtype=np.float64), axis=-1)
    assert drawn.mean() > 0.1
    # A steady tone: drawn all along, from start to end.
    assert drawn[:, : box.width // 10].any() and drawn[:, -box.width // 10:].any()


def test_tone_waveform_samples_and_stored_loudness(packs: Path) -> None:
    samples = preview.track_samples(packs / "tmusic" / "tone.ogg")
    assert samples.shape == (6 * preview.WAVE_RATE, 2)
    # ffmpeg's sine is full scale/8 (−18 dBFS), made stereo at −3 dB: −21 dBTP, about −21.7 LUFS. The sheet
    # prints what validation stored for the track, the figures the pipeline levels the music by.
    peak = np.abs(samples.astype(np.float64)).max() / 32768
    assert -22.5 < 20 * np.log10(peak) < -19.5


def test_problems_are_listed_in_red_at_the_top(sheet_file: tuple[preview.Sheet, Path], pixels: np.ndarray) -> None:
    sheet = sheet_file[0]
    assert any("short.cube" in p.path or "short" in p.problem for p in sheet.problems)
    first_cell = min(box.top for box in sheet.cells.values())
    top = pixels[:first_cell]
    reds = np.all(np.abs(top - np.array(preview.RED, dtype=np.float64)) < 30, axis=-1)
    assert reds.sum() > 200


def test_bundled_samples_are_small_photos() -> None:
    paths = preview.sample_photo_paths()
    assert len(paths) == 3
    for path in paths:
        assert path.stat().st_size < 80_000
        with Image.open(path) as img:
            assert img.format == "JPEG" and max(img.size) <= 480


def test_chinese_titles_only_with_a_cjk_font() -> None:
    fonts = preview.load_fonts(cjk=False)
    assert [text for text, _, _ in preview.title_runs("p/x", "Warm", "暖阳", fonts)] == ["p/x", "   Warm"]
    with_cjk = preview.Fonts(fonts.title, fonts.heading, fonts.label, fonts.small, cjk=fonts.label)
    assert "暖阳" in "".join(text for text, _, _ in preview.title_runs("p/x", "Warm", "暖阳", with_cjk))


def test_cli_writes_the_sheet_with_the_bundled_photos(packs: Path, tmp_path: Path) -> None:
    out = tmp_path / "sheet.png"
    assert main(["packs", "preview", str(packs / "reds"), str(packs / "tstickers"), "-o", str(out)]) == 0
    with Image.open(out) as img:
        assert img.format == "PNG" and img.width == preview.SHEET_WIDTH


def test_cli_fails_when_a_path_has_no_packs(tmp_path: Path) -> None:
    empty = tmp_path / "empty"
    empty.mkdir()
    assert main(["packs", "preview", str(empty), "-o", str(tmp_path / "sheet.png")]) != 0
    assert not (tmp_path / "sheet.png").exists()
    assert main(["packs", "preview", str(tmp_path / "missing"), "-o", str(tmp_path / "sheet.png")]) != 0


def test_cli_refuses_a_photos_folder_without_photos(packs: Path, tmp_path: Path) -> None:
    (tmp_path / "none").mkdir()
    assert main(["packs", "preview", str(packs / "reds"), "--photos", str(tmp_path / "none"),
                 "-o", str(tmp_path / "sheet.png")]) == 2
