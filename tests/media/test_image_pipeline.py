"""The photo pipeline on generated photos: what a person would see in the renditions."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media_service.errors import ImageTooLarge, UnsupportedMediaType
from media_service.imaging.decode import probe_file
from media_service.limits import DEFAULT_LIMITS
from media_service.packs import PackRegistry, load_registry
from media_service.pipeline.image import ImageJob, run_image_pipeline
from media_service.recipe import recipe_from_dict
from tests.support.media import (
    display_p3_profile,
    grey_image,
    mean_rgb,
    metadata_markers,
    png_bomb,
    quadrant_image,
    save_heic,
    save_jpeg,
)
from tests.support.packs import PACK_HEADER, write_look_pack, write_sticker_pack

pytestmark = pytest.mark.media


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> PackRegistry:
    root = tmp_path_factory.mktemp("packs")
    return load_registry([write_look_pack(root / "f")], [write_sticker_pack(root / "s")])


def render(src: Path, registry: PackRegistry, tmp_path: Path, recipe: dict[str, object] | None = None,
           ) -> ImageJob:
    out = tmp_path / "out"
    out.mkdir(exist_ok=True)
    return run_image_pipeline(ImageJob(source=src, recipe=recipe_from_dict(recipe or {}), registry=registry,
                                       workdir=out))


def opened(job: ImageJob, name: str) -> Image.Image:
    r = next(r for r in job.renditions if r.name == name)
    img = Image.open(r.path)
    img.load()
    return img


def test_exif_orientation_6_comes_out_portrait_and_upright(registry: PackRegistry, tmp_path: Path) -> None:
    # Stored landscape 1600×1200 with orientation 6 (rotate 90° clockwise to display).
    src = save_jpeg(quadrant_image(1600, 1200), tmp_path / "o6.jpg", orientation=6)
    job = render(src, registry, tmp_path)
    assert job.facts is not None and (job.facts.width, job.facts.height) == (1200, 1600)
    img = opened(job, "w1080.jpg")
    assert img.size == (1080, 1440)
    # After a clockwise turn the stored top-left (red) is top-right, bottom-left (blue) is top-left.
    r, g, b = mean_rgb(img, (800, 100, 1000, 300))
    assert r > 180 and g < 80 and b < 80
    r, g, b = mean_rgb(img, (80, 100, 280, 300))
    assert b > 180 and r < 80


@pytest.mark.parametrize("orientation,corner_colour", [(3, "white"), (8, "green")])
def test_other_orientations(registry: PackRegistry, tmp_path: Path, orientation: int, corner_colour: str) -> None:
    src = save_jpeg(quadrant_image(800, 600), tmp_path / "o.jpg", orientation=orientation)
    img = opened(render(src, registry, tmp_path), "w360.jpg")
    r, g, b = mean_rgb(img, (10, 10, 60, 60))  # top-left after orientation
    if corner_colour == "white":  # 180°: bottom-right → top-left
        assert min(r, g, b) > 200
    else:  # 8 = 90° counter-clockwise: top-right (green) → top-left
        assert g > 150 and r < 80


def test_all_metadata_gone(registry: PackRegistry, tmp_path: Path) -> None:
    src = save_jpeg(quadrant_image(1600, 1200), tmp_path / "meta.jpg", orientation=6,
                    icc=display_p3_profile())
    job = render(src, registry, tmp_path, {"aspect": "1:1"})
    assert len(job.renditions) == 6
    for r in job.renditions:
        data = r.path.read_bytes()
        assert metadata_markers(data) == [], r.name
        img = Image.open(r.path)
        assert len(img.getexif()) == 0
        assert "icc_profile" not in img.info and "xmp" not in img.info and "comment" not in img.info


def test_display_p3_converted_to_srgb(registry: PackRegistry, tmp_path: Path) -> None:
    p3 = Image.new("RGB", (800, 600), (200, 100, 80))
    src = save_jpeg(p3, tmp_path / "p3.jpg", icc=display_p3_profile(), quality=98)
    img = opened(render(src, registry, tmp_path), "w720.webp")
    r, g, b = mean_rgb(img, (100, 100, 600, 500))
    # lcms: P3 (200,100,80) is sRGB (215,93,73); untouched it would stay (200,100,80) and look dull.
    assert abs(r - 215) <= 4 and abs(g - 93) <= 4 and abs(b - 73) <= 4


@pytest.mark.parametrize("intensity,shift", [(1.0, 38), (0.5, 19)])
def test_look_shifts_colour_the_way_it_says(registry: PackRegistry, tmp_path: Path, intensity: float,
                                            shift: int) -> None:
    src = save_jpeg(grey_image(1200, 1600), tmp_path / "grey.jpg", quality=98)
    img = opened(render(src, registry, tmp_path, {"filter": {"id": "tlooks/warm", "intensity": intensity}}),
                 "w1080.webp")
    r, g, b = mean_rgb(img, (100, 100, 900, 900))
    # warm.cube: R +0.15, B −0.15 (× intensity): 0.15·255 ≈ 38.
    assert abs(r - (128 + shift)) <= 4
    assert abs(g - 128) <= 3
    assert abs(b - (128 - shift)) <= 4


def test_sticker_lands_where_the_recipe_puts_it(registry: PackRegistry, tmp_path: Path) -> None:
    src = save_jpeg(grey_image(2000, 2000), tmp_path / "g.jpg", quality=98)
    recipe = {"aspect": "1:1", "stickers": [{"id": "tstickers/red", "x": 0.25, "y": 0.75, "scale": 0.4}]}
    img = opened(render(src, registry, tmp_path, recipe), "w1080.webp")
    # 200×100 sticker at 40% of 1080 → 432×216, centred at (270, 810).
    inside = mean_rgb(img, (270 - 180, 810 - 80, 270 + 180, 810 + 80))
    assert inside[0] > 230 and inside[1] < 30 and inside[2] < 30
    for box in [(270 - 216 - 40, 790, 270 - 216 - 10, 830),  # left of it
                (270 + 216 + 10, 790, 270 + 216 + 40, 830),  # right of it
                (250, 810 - 108 - 40, 290, 810 - 108 - 10),  # above it
                (600, 100, 900, 400)]:
        assert abs(mean_rgb(img, box)[0] - 128) < 6, box


def test_rotated_and_faded_sticker(registry: PackRegistry, tmp_path: Path) -> None:
    src = save_jpeg(grey_image(2000, 2000), tmp_path / "g.jpg", quality=98)
    recipe = {"stickers": [{"id": "tstickers/red", "x": 0.5, "y": 0.5, "scale": 0.4, "rotation": 90,
                            "opacity": 0.5}]}
    img = opened(render(src, registry, tmp_path, recipe), "w1080.webp")
    # Turned 90°: 216 wide × 432 tall around the centre (540, 540); half opacity over grey.
    r, g, _ = mean_rgb(img, (540 - 60, 540 - 180, 540 + 60, 540 + 180))
    assert abs(r - (128 + 255) / 2) < 10 and abs(g - 64) < 10
    assert abs(mean_rgb(img, (540 + 150, 520, 540 + 200, 560))[0] - 128) < 6  # would be red if not turned


def test_widths_formats_and_placeholder(registry: PackRegistry, tmp_path: Path) -> None:
    src = save_jpeg(quadrant_image(3000, 4000), tmp_path / "big.jpg")
    job = render(src, registry, tmp_path, {"aspect": "3:4"})
    got = {(r.name, r.content_type, r.width, r.height) for r in job.renditions}
    assert got == {("w1080.webp", "image/webp", 1080, 1440), ("w1080.jpg", "image/jpeg", 1080, 1440),
                   ("w720.webp", "image/webp", 720, 960), ("w720.jpg", "image/jpeg", 720, 960),
                   ("w360.webp", "image/webp", 360, 480), ("w360.jpg", "image/jpeg", 360, 480)}
    for r in job.renditions:
        with Image.open(r.path) as img:
            assert img.format == ("WEBP" if r.name.endswith("webp") else "JPEG")
            assert img.size == (r.width, r.height)
        assert r.bytes == r.path.stat().st_size
    assert len(job.placeholder["blurhash"]) == 2 + 4 + 2 * 11
    assert job.placeholder["dominant_color"].startswith("#")


def test_small_photo_is_never_upscaled(registry: PackRegistry, tmp_path: Path) -> None:
    src = tmp_path / "small.png"
    quadrant_image(500, 300).save(src)
    job = render(src, registry, tmp_path)
    assert sorted({(r.width, r.height) for r in job.renditions}) == [(360, 216), (500, 300)]


@pytest.mark.parametrize("fmt", ["PNG", "WEBP", "GIF", "HEIF"])
def test_other_formats(registry: PackRegistry, tmp_path: Path, fmt: str) -> None:
    src = tmp_path / f"src.{fmt.lower()}"
    if fmt == "HEIF":
        save_heic(quadrant_image(800, 600), src, orientation=6)
        expected = (600, 800)
    else:
        quadrant_image(800, 600).save(src, fmt)
        expected = (800, 600)
    job = render(src, registry, tmp_path)
    assert job.facts is not None and (job.facts.width, job.facts.height) == expected
    img = opened(job, "w360.jpg")
    assert img.size[0] == 360
    # Red stays top-left, or (the HEIC carries orientation 6) moves to the top-right.
    r, g, b = mean_rgb(img, (300, 10, 350, 60) if fmt == "HEIF" else (10, 10, 60, 60))
    assert r > 180 and g < 80 and b < 80


def test_png_with_alpha_is_flattened_on_white(registry: PackRegistry, tmp_path: Path) -> None:
    src = tmp_path / "alpha.png"
    Image.new("RGBA", (800, 600), (0, 0, 0, 0)).save(src)
    r, g, b = mean_rgb(opened(render(src, registry, tmp_path), "w360.jpg"), (0, 0, 360, 270))
    assert min(r, g, b) > 245


def test_animated_gif_uses_first_frame(registry: PackRegistry, tmp_path: Path) -> None:
    src = tmp_path / "anim.gif"
    frames = [Image.new("RGB", (400, 300), c) for c in ((255, 0, 0), (0, 0, 255))]
    frames[0].save(src, save_all=True, append_images=frames[1:], duration=100, loop=0)
    r, g, b = mean_rgb(opened(render(src, registry, tmp_path), "w360.jpg"), (50, 50, 300, 200))
    assert r > 200 and g < 50 and b < 50


def test_face_aware_crop_keeps_the_face(registry: PackRegistry, tmp_path: Path) -> None:
    from skimage import data

    # A wide 2400×1000 canvas with the astronaut's portrait at its left edge: a centre 3:4 crop
    # (750 wide, from x=825) would miss her face completely.
    face = Image.fromarray(data.astronaut()).resize((1000, 1000))
    canvas = Image.new("RGB", (2400, 1000), (20, 20, 20))
    canvas.paste(face, (0, 0))
    src = tmp_path / "astronaut.jpg"
    canvas.save(src, quality=92)
    job = render(src, registry, tmp_path, {"aspect": "3:4"})
    assert job.crop is not None
    assert job.crop.left < 300, job.crop  # the face is around x ≈ 350–600 of the canvas
    assert job.crop.right > 600


def test_pixel_cap_checked_from_the_header(tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png")
    assert bomb.stat().st_size < 1_000_000
    with pytest.raises(ImageTooLarge):
        probe_file(bomb, DEFAULT_LIMITS)


def test_not_an_image(tmp_path: Path) -> None:
    src = tmp_path / "x.jpg"
    src.write_bytes(b"<html><body>hi</body></html>")
    with pytest.raises(UnsupportedMediaType):
        probe_file(src, DEFAULT_LIMITS)


def test_cmyk_and_16_bit(registry: PackRegistry, tmp_path: Path) -> None:
    cmyk = tmp_path / "cmyk.jpg"
    Image.new("CMYK", (400, 300), (0, 255, 255, 0)).save(cmyk)  # pure red in CMYK
    r, g, b = mean_rgb(opened(render(cmyk, registry, tmp_path), "w360.jpg"), (20, 20, 300, 200))
    assert r > 200 and g < 60 and b < 60
    deep = tmp_path / "deep.png"
    Image.fromarray(np.full((300, 400), 40000, dtype=np.uint16)).save(deep)
    r, g, b = mean_rgb(opened(render(deep, registry, tmp_path), "w360.jpg"), (20, 20, 300, 200))
    assert abs(r - 40000 / 257) < 4 and r == g == b


def _pin_registry(root: Path) -> PackRegistry:
    """A red 200×100 sticker pinned by its bottom centre, and the same kept out of the bottom 20%."""
    pack = root / "pins"
    pack.mkdir(parents=True)
    Image.new("RGBA", (200, 100), (255, 0, 0, 255)).save(pack / "red.png")
    (pack / "pack.toml").write_text(PACK_HEADER.format(id="pins") + """
[[stickers]]
id = "pin"
title = { en = "Pin", zh = "钉" }
file = "red.png"
anchor = "bottom"

[[stickers]]
id = "safe"
title = { en = "Safe", zh = "安全" }
file = "red.png"
safe_area = { bottom = 0.2, right = 0.1 }
""")
    return load_registry([], [root])


def test_sticker_anchor_lands_on_the_point_and_turns_about_it(tmp_path: Path) -> None:
    registry = _pin_registry(tmp_path / "packs")
    src = save_jpeg(grey_image(1080, 1080), tmp_path / "g.jpg", quality=98)
    img = opened(render(src, registry, tmp_path, {"stickers": [
        {"id": "pins/pin", "x": 0.5, "y": 0.5, "scale": 0.4}]}), "w1080.webp")
    # 432×216 with its bottom edge's centre on (540, 540): all of it above the point.
    assert mean_rgb(img, (540 - 150, 540 - 190, 540 + 150, 540 - 30))[0] > 230
    assert abs(mean_rgb(img, (540 - 150, 540 + 20, 540 + 150, 540 + 80))[0] - 128) < 6
    img = opened(render(src, registry, tmp_path, {"stickers": [
        {"id": "pins/pin", "x": 0.5, "y": 0.5, "scale": 0.4, "rotation": 90}]}), "w1080.webp")
    # Turned clockwise about the pin: the body now lies to the right of (540, 540).
    assert mean_rgb(img, (540 + 30, 540 - 150, 540 + 190, 540 + 150))[0] > 230
    assert abs(mean_rgb(img, (540 - 190, 540 - 150, 540 - 30, 540 + 150))[0] - 128) < 6


def test_sticker_safe_area_keeps_it_out_of_the_margins(tmp_path: Path) -> None:
    registry = _pin_registry(tmp_path / "packs")
    src = save_jpeg(grey_image(1080, 1080), tmp_path / "g.jpg", quality=98)
    img = opened(render(src, registry, tmp_path, {"stickers": [
        {"id": "pins/safe", "x": 0.95, "y": 0.97, "scale": 0.4}]}), "w1080.webp")
    # Asked for the bottom-right corner; moved up and left until it clears the bottom 20% and right 10%.
    safe_right, safe_bottom = 1080 - 108, 1080 - 216
    assert mean_rgb(img, (safe_right - 420, safe_bottom - 200, safe_right - 12, safe_bottom - 12))[0] > 230
    assert abs(mean_rgb(img, (safe_right - 400, safe_bottom + 10, safe_right - 20, 1075))[0] - 128) < 6
    assert abs(mean_rgb(img, (safe_right + 10, safe_bottom - 200, 1075, safe_bottom - 20))[0] - 128) < 6
