import blurhash as reference
import numpy as np
from PIL import Image

from media_service.imaging.placeholder import BASE83, THUMB_SIDE, blurhash, dominant_color, thumbnail


def _photo() -> Image.Image:
    y, x = np.mgrid[0:300, 0:400]
    arr = np.stack([x * 255 // 400, y * 255 // 300, (x + y) * 255 // 700], axis=-1).astype(np.uint8)
    return Image.fromarray(arr)


def test_matches_reference_encoder() -> None:
    img = _photo()
    thumb = thumbnail(img, THUMB_SIDE)
    ours = blurhash(img)
    theirs = reference.encode(np.asarray(thumb), components_x=4, components_y=3)
    assert ours == theirs


def test_portrait_swaps_components() -> None:
    img = _photo().transpose(Image.Transpose.ROTATE_90)
    # Size flag (x-1) + (y-1)·9: 3×4 components for portrait → 29 → 'T'; landscape 4×3 → 21 → 'L'.
    assert blurhash(img)[0] == "T"
    assert blurhash(_photo())[0] == "L"


def test_solid_colour_dominant_and_hash() -> None:
    img = Image.new("RGB", (300, 200), (200, 40, 90))
    assert dominant_color(img) == "#c8285a"
    h = blurhash(img)
    dc = sum(BASE83.index(c) * 83 ** (3 - i) for i, c in enumerate(h[2:6]))
    assert (dc >> 16, (dc >> 8) & 255, dc & 255) == (200, 40, 90)


def test_dominant_colour_is_the_largest_area() -> None:
    arr = np.zeros((100, 100, 3), dtype=np.uint8)
    arr[:, :70] = (20, 120, 220)
    arr[:, 70:] = (250, 250, 250)
    assert dominant_color(Image.fromarray(arr)) == "#1478dc"
