"""A strict parser for .cube 3D LUTs (Adobe/IRIDAS format).

Strict on purpose: a designer's typo must fail at load with the line, never render a wrong colour.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from media_service.errors import PackError

MIN_SIZE, MAX_SIZE = 2, 65


@dataclass(frozen=True)
class Lut:
    size: int
    # Shape (size, size, size, 3) indexed [b, g, r]: the file's row order, red changing fastest.
    table: NDArray[np.float32]
    title: str = ""

    def flat(self) -> list[float]:
        """The table as Pillow's Color3DLUT and ffmpeg's lut3d read it (red fastest)."""
        return [float(v) for v in self.table.reshape(-1)]


def identity_table(size: int) -> NDArray[np.float32]:
    axis = np.linspace(0.0, 1.0, size, dtype=np.float32)
    b, g, r = np.meshgrid(axis, axis, axis, indexing="ij")
    return np.stack([r, g, b], axis=-1).astype(np.float32)


def fold_intensity(lut: Lut, intensity: float) -> Lut:
    """``identity + a·(lut − identity)``: the same folded table serves stills and video."""
    if not 0.0 <= intensity <= 1.0:
        raise ValueError("intensity must be within 0..1")
    ident = identity_table(lut.size)
    table = np.clip(ident + np.float32(intensity) * (lut.table - ident), 0.0, 1.0).astype(np.float32)
    return Lut(lut.size, table, lut.title)


def load_cube(path: Path) -> Lut:
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PackError(str(path), None, "file not found") from None
    except UnicodeDecodeError:
        raise PackError(str(path), None, "not a UTF-8 text file (a .cube LUT is text)") from None
    return parse_cube(text, str(path))


def _floats(parts: list[str], path: str, line_no: int, what: str) -> list[float]:
    try:
        values = [float(p) for p in parts]
    except ValueError:
        raise PackError(path, line_no, f"{what}: expected numbers, got {' '.join(parts)!r}") from None
    if not all(math.isfinite(v) for v in values):
        raise PackError(path, line_no, f"{what}: NaN or infinity is not allowed")
    return values


# Rows start with a number, or with nan/inf (refused below, with their line); no keyword starts so.
_ROW_START = frozenset("0123456789+-.nNiI")


def _is_number(token: str) -> bool:
    try:
        float(token)
    except ValueError:
        return False
    return True


def parse_cube(text: str, path: str = "<cube>") -> Lut:
    size: int | None = None
    title = ""
    domain_min = [0.0, 0.0, 0.0]
    domain_max = [1.0, 1.0, 1.0]
    tokens: list[str] = []  # the table's numbers, three per row, converted at once below
    row_lines: list[int] = []
    for line_no, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip() if "#" in raw else raw.strip()
        if not line:
            continue
        parts = line.split()
        if parts[0][0] in _ROW_START:
            if size is None:
                raise PackError(path, line_no, "table rows before LUT_3D_SIZE")
            if len(parts) != 3:
                raise PackError(path, line_no, f"a table row has three numbers, this one has {len(parts)}")
            tokens.extend(parts)
            row_lines.append(line_no)
            continue
        keyword = parts[0].upper()
        if keyword == "TITLE":
            title = line[5:].strip().strip('"')
        elif keyword == "LUT_3D_SIZE":
            if row_lines:
                raise PackError(path, line_no, "LUT_3D_SIZE must come before the table rows")
            if len(parts) != 2 or not parts[1].isdigit():
                raise PackError(path, line_no, "LUT_3D_SIZE takes one whole number")
            size = int(parts[1])
            if not MIN_SIZE <= size <= MAX_SIZE:
                raise PackError(path, line_no, f"LUT_3D_SIZE {size} is outside {MIN_SIZE}..{MAX_SIZE}")
        elif keyword == "LUT_1D_SIZE":
            raise PackError(path, line_no, "1D LUTs are not supported; export a 3D LUT (LUT_3D_SIZE)")
        elif keyword in ("DOMAIN_MIN", "DOMAIN_MAX"):
            if len(parts) != 4:
                raise PackError(path, line_no, f"{keyword} takes three numbers")
            values = _floats(parts[1:], path, line_no, keyword)
            if keyword == "DOMAIN_MIN":
                domain_min = values
            else:
                domain_max = values
        elif keyword in ("LUT_3D_INPUT_RANGE", "LUT_1D_INPUT_RANGE"):
            raise PackError(path, line_no, f"{keyword} is not supported; use the 0..1 domain")
        else:
            raise PackError(path, line_no, f"unknown keyword {parts[0]!r}")
    if size is None:
        raise PackError(path, None, "missing LUT_3D_SIZE")
    if domain_min != [0.0, 0.0, 0.0] or domain_max != [1.0, 1.0, 1.0]:
        raise PackError(path, None, "only the 0..1 domain is supported (DOMAIN_MIN 0 0 0, DOMAIN_MAX 1 1 1)")
    try:
        numbers = np.array(tokens, dtype=np.float64)
    except ValueError:
        bad = next(i for i, t in enumerate(tokens) if not _is_number(t))
        raise PackError(path, row_lines[bad // 3], f"table row: expected numbers, got {tokens[bad]!r}") from None
    finite = np.isfinite(numbers)
    if not finite.all():
        bad = int(np.argmin(finite))
        raise PackError(path, row_lines[bad // 3], "table row: NaN or infinity is not allowed")
    expected = size**3
    if len(row_lines) != expected:
        raise PackError(path, None, f"LUT_3D_SIZE {size} needs {expected} rows, found {len(row_lines)}")
    table = np.clip(numbers, 0.0, 1.0).astype(np.float32).reshape(size, size, size, 3)
    return Lut(size, table, title)


HALD_LEVELS = range(2, 9)  # level L: an L³×L³ image holding an L²-point cube; 8 → 512×512, 64³ (our limit is 65³)


def load_hald(path: Path) -> Lut:
    """A Hald CLUT PNG (as darktable, RawTherapee, G'MIC and ffmpeg's haldclut export it): an L³×L³ image
    whose pixels, read row by row, are the L²-point cube's entries with red changing fastest, then green,
    then blue: the same order as a .cube table."""
    from PIL import Image

    where = str(path)
    try:
        with Image.open(path) as img:
            fmt, size = img.format, img.size
            if fmt != "PNG":
                raise PackError(where, None, f"a Hald CLUT must be a PNG, this is {fmt}")
            img.load()
            rgb = img.convert("RGB")
    except FileNotFoundError:
        raise PackError(where, None, "file not found") from None
    except (OSError, Image.DecompressionBombError) as exc:
        raise PackError(where, None, f"not a readable PNG ({exc})") from None
    width, height = size
    level = round(width ** (1 / 3))
    if width != height or level**3 != width:
        raise PackError(where, None, f"{width}×{height} is not a Hald CLUT: it must be square with a side of "
                                     "L³ (8, 27, 64, 125, 216, 343 or 512 pixels)")
    if level not in HALD_LEVELS:
        raise PackError(where, None, f"Hald level {level} is outside {HALD_LEVELS.start}..{HALD_LEVELS.stop - 1}")
    n = level * level
    table = (np.asarray(rgb, dtype=np.float32) / 255.0).reshape(n, n, n, 3)
    return Lut(n, table, path.stem)


def load_lut(path: Path) -> Lut:
    """A look's table from a .cube file or a Hald CLUT .png."""
    if path.suffix.lower() == ".png":
        return load_hald(path)
    if path.suffix.lower() != ".cube":
        raise PackError(str(path), None, "a look's table is a .cube file or a Hald CLUT .png")
    return load_cube(path)
