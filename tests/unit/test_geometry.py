import math

import pytest

from media_service.geometry import (
    Box,
    aspect_crop,
    crop_size,
    decode_request,
    even,
    fit_width,
    ladder,
    sticker_placement,
)


@pytest.mark.parametrize(
    ("src", "ratio", "expected"),
    [
        ((3000, 4000), (3, 4), (3000, 4000)),
        ((4000, 3000), (3, 4), (2250, 3000)),
        ((4000, 3000), (1, 1), (3000, 3000)),
        ((3000, 4000), (4, 3), (3000, 2250)),
        ((1080, 1920), (9, 16), (1080, 1920)),
        ((1000, 1000), (9, 16), (562, 1000)),
        ((1001, 999), None, (1001, 999)),
    ],
)
def test_crop_size(src: tuple[int, int], ratio: tuple[int, int] | None, expected: tuple[int, int]) -> None:
    assert crop_size(*src, ratio) == expected


def test_centre_crop_without_faces() -> None:
    assert aspect_crop(4000, 3000, (3, 4)) == Box(875, 0, 2250, 3000)


def test_crop_follows_a_face_and_stays_in_frame() -> None:
    face_left = Box(100, 1000, 300, 300)
    crop = aspect_crop(4000, 3000, (3, 4), [face_left])
    assert crop.left == 0 and crop.width == 2250
    face_right = Box(3600, 1000, 300, 300)
    crop = aspect_crop(4000, 3000, (3, 4), [face_right])
    assert crop.right == 4000
    middle = Box(2500, 1200, 200, 200)
    crop = aspect_crop(4000, 3000, (3, 4), [middle])
    assert crop.left <= 2500 and crop.right >= 2700


def test_crop_centres_on_several_faces() -> None:
    faces = [Box(1500, 500, 200, 200), Box(2300, 500, 200, 200)]
    crop = aspect_crop(4000, 3000, (3, 4), faces)
    centre = crop.left + crop.width / 2
    assert abs(centre - 2000) <= 1


def test_fit_width_never_upscales() -> None:
    assert fit_width(3000, 4000, 1080) == (1080, 1440)
    assert fit_width(800, 600, 1080) == (800, 600)


def test_ladder() -> None:
    assert ladder(1080, (1080, 720, 360)) == [1080, 720, 360]
    assert ladder(4000, (1080, 720, 360)) == [1080, 720, 360]
    assert ladder(800, (1080, 720, 360)) == [800, 720, 360]
    assert ladder(720, (1080, 720, 360)) == [720, 360]
    assert ladder(200, (1080, 720, 360)) == [200]


def test_decode_request_keeps_enough_pixels() -> None:
    # 4000×3000 source, 2250-wide crop, 1080 output: the decoder must keep ≥ 1080 across the crop.
    w, _ = decode_request(4000, 3000, 1080 / 2250)
    assert w * 2250 / 4000 >= 1080 - 1
    assert decode_request(800, 600, 1.5) == (800, 600)


def test_even() -> None:
    assert even(1079) == 1080 and even(1) == 2 and even(720.4) == 720


def test_sticker_placement_centre_and_scale() -> None:
    p = sticker_placement(1080, 1440, 512, 256, x=0.5, y=0.25, scale=0.5, rotation=0)
    assert (p.width, p.height) == (540, 270)
    assert p.box == Box(270, 225, 540, 270)


def test_sticker_placement_rotated_box_grows() -> None:
    p = sticker_placement(1000, 1000, 100, 100, x=0.5, y=0.5, scale=0.2, rotation=45)
    assert p.width == 200
    diag = 200 * math.sqrt(2)
    assert abs(p.box.width - diag) <= 1.5 and abs(p.box.height - diag) <= 1.5
    assert abs(p.box.left + p.box.width / 2 - 500) <= 1


def test_box_scaled() -> None:
    assert Box(10, 20, 30, 40).scaled(0.5, 0.5) == Box(5, 10, 15, 20)
