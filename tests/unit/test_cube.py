import numpy as np
import pytest

from media_service.errors import PackError
from media_service.packs.cube import fold_intensity, identity_table, parse_cube
from tests.support.packs import cube_text, warm


def test_identity_parses_red_fastest() -> None:
    lut = parse_cube(cube_text(3))
    assert lut.size == 3
    np.testing.assert_allclose(lut.table, identity_table(3), atol=1e-6)
    # [b, g, r] indexing: the second row of the file is r=0.5, g=0, b=0.
    np.testing.assert_allclose(lut.table[0, 0, 1], [0.5, 0.0, 0.0], atol=1e-6)


def test_fold_intensity_is_linear_between_identity_and_look() -> None:
    lut = parse_cube(cube_text(5, warm))
    half = fold_intensity(lut, 0.5)
    mid = half.table[2, 2, 2]
    np.testing.assert_allclose(mid, [0.575, 0.5, 0.425], atol=1e-5)
    np.testing.assert_allclose(fold_intensity(lut, 0.0).table, identity_table(5), atol=1e-6)
    np.testing.assert_allclose(fold_intensity(lut, 1.0).table, lut.table, atol=1e-6)
    with pytest.raises(ValueError):
        fold_intensity(lut, 1.5)


def test_comments_title_and_domain_accepted() -> None:
    text = "# made by hand\nTITLE \"x\"\nDOMAIN_MIN 0 0 0\nDOMAIN_MAX 1 1 1\n" + cube_text(2).split("\n", 1)[1]
    assert parse_cube(text).size == 2


@pytest.mark.parametrize(
    ("text", "line", "words"),
    [
        ("LUT_3D_SIZE 2\n0 0 0\n1 0 0\n0 1 0\nnan 1 0\n0 0 1\n1 0 1\n0 1 1\n1 1 1\n", 5, "NaN"),
        ("LUT_3D_SIZE 2\n0 0 0\n1 0 0\n0 1 0\n1 1\n", 5, "three numbers"),
        ("LUT_3D_SIZE 2\n0 0 0\n1 0 x\n", 3, "expected numbers"),
        ("LUT_3D_SIZE 99\n", 1, "outside"),
        ("LUT_3D_SIZE 1\n", 1, "outside"),
        ("LUT_1D_SIZE 1024\n", 1, "1D"),
        ("0 0 0\n", 1, "before LUT_3D_SIZE"),
        ("LUT_3D_SIZE 2\nFOO 1\n", 2, "unknown keyword"),
        ("LUT_3D_SIZE 2\n0 0 0\n1 0 0\n0 1 0\ninf 1 0\n0 0 1\n1 0 1\n0 1 1\n1 1 1\n", 5, "infinity"),
    ],
)
def test_errors_name_the_line(text: str, line: int, words: str) -> None:
    with pytest.raises(PackError) as info:
        parse_cube(text, "looks/bad.cube")
    assert info.value.line == line
    assert words in info.value.problem
    assert f"looks/bad.cube:{line}" in str(info.value)


def test_wrong_row_count_named() -> None:
    text = "LUT_3D_SIZE 2\n" + "0 0 0\n" * 7
    with pytest.raises(PackError, match="needs 8 rows, found 7"):
        parse_cube(text, "x.cube")


def test_non_unit_domain_refused() -> None:
    text = "LUT_3D_SIZE 2\nDOMAIN_MAX 2 2 2\n" + "0 0 0\n" * 8
    with pytest.raises(PackError, match=r"0\.\.1 domain"):
        parse_cube(text)


def test_values_clamped() -> None:
    text = "LUT_3D_SIZE 2\n" + "1.5 -0.2 0.5\n" * 8
    lut = parse_cube(text)
    assert lut.table.max() <= 1.0 and lut.table.min() >= 0.0
