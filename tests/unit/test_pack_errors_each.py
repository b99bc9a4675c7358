"""Each designer-pack error has a test: the message (and its line, where it names one), through the public
entry points. The last test reads every ``PackError(...)`` message in media_service/packs/*.py and fails
when one has no test here or elsewhere in tests/, so a new error cannot land without one.

Errors already covered elsewhere (test_cube, test_packs, test_packs_validate, test_pack_items,
test_pack_archive) are not repeated here unless those tests' strings cannot tell the error apart from a
similar one. A row marked xfail(strict=True) is a bug found in the validator: fixing it turns the row into
an XPASS, which fails, so the mark goes with the fix.
"""

from __future__ import annotations

import ast
import functools
import io
import re
import stat
import struct
import subprocess
import zipfile
from collections.abc import Callable
from functools import partial
from pathlib import Path
from typing import Any

import pytest
from PIL import Image

from media_service.errors import PackError
from media_service.packs.archive import ArchiveLimits, safe_extract
from media_service.packs.cube import load_lut, parse_cube
from media_service.packs.registry import load_packs
from media_service.packs.validate import validate
from tests.support.packs import PACK_HEADER, cube_text

REPO = Path(__file__).resolve().parents[2]

# What a row's maker returns: a pack folder, archive or path (or several) for validate(), or a call that
# raises PackError (a file-level entry point: parse_cube, load_lut, safe_extract, load_packs).
Target = Path | list[Path] | Callable[[], object]

# PACK_HEADER takes lines 1–6 ([pack] id version title author license); an item appended after it starts
# at line 8, its keys on the lines below (id 9, title 10, lut/file 11, …).
ITEM = 8
LOOK = '\n[[looks]]\nid = "a"\ntitle = { en = "A", zh = "甲" }\nlut = "a.cube"\n'
STICKER = '\n[[stickers]]\nid = "a"\ntitle = { en = "A", zh = "甲" }\nfile = "a.png"\n'
TRACK = ('\n[[tracks]]\nid = "a"\ntitle = { en = "A", zh = "甲" }\nartist = "x"\nfile = "a.ogg"\nlicense = "CC0-1.0"\n'
         'source = "generated"\n')
TRACK_EXTRA = ITEM + 7  # the first key written after TRACK


def _pack(tmp: Path, toml: str, files: dict[str, bytes | Callable[[Path], object]] | None = None,
          pack_id: str = "p") -> Path:
    """A pack folder ``tmp/<pack_id>`` with ``pack.toml`` = ``toml`` and the given files (bytes, or a
    function writing the file at the path it is given). Without ``files``: an identity a.cube."""
    folder = tmp / pack_id
    folder.mkdir(parents=True)
    for name, content in (files if files is not None else {"a.cube": cube_text(2).encode()}).items():
        if isinstance(content, bytes):
            (folder / name).write_bytes(content)
        else:
            content(folder / name)
    (folder / "pack.toml").write_text(toml, encoding="utf-8")
    return folder


def _header(pack_id: str = "p") -> str:
    return PACK_HEADER.format(id=pack_id)


def _image(size: tuple[int, int], mode: str = "RGBA", fmt: str = "PNG") -> Callable[[Path], object]:
    return lambda path: Image.new(mode, size).save(path, fmt)


def _apng(frames: int) -> Callable[[Path], object]:
    """An animated PNG whose frames all differ (Pillow merges identical neighbours)."""
    images = [Image.new("RGBA", (2, 2), (i, 255 - i, 0, 255)) for i in range(frames)]
    return lambda path: images[0].save(path, "PNG", save_all=True, append_images=images[1:], duration=40)


def _audio(seconds: float, source: str = "sine=frequency=440") -> Callable[[Path], object]:
    """A short Ogg Vorbis made by ffmpeg from a lavfi source (the codec follows the file's suffix)."""
    def write(path: Path) -> None:
        subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                        f"{source}:sample_rate=22050" if source.startswith("sine") else f"{source}:r=22050",
                        "-t", str(seconds), "-ac", "1", str(path)], check=True, timeout=30)
    return write


def _truncated_m4a(path: Path) -> None:
    """An M4A whose header (moov first) says 6 s of AAC but whose samples are cut off: ffprobe reads the
    header happily, decoding it fails."""
    full = path.with_suffix(".full.m4a")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=frequency=440:sample_rate=8000:duration=6", "-c:a", "aac", "-b:a", "16k",
                    "-movflags", "+faststart", str(full)], check=True, timeout=30)
    data = full.read_bytes()
    full.unlink()
    path.write_bytes(data[:data.index(b"mdat") + 12])


def _zip(path: Path, members: dict[str, bytes], links: tuple[str, ...] = ()) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members.items():
            zf.writestr(name, data)
        for name in links:
            info = zipfile.ZipInfo(name)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


def _zip_with_lying_size(path: Path, real: int, claimed: int) -> Path:
    """One member holding ``real`` bytes whose headers (local and central) claim ``claimed``."""
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("p/pack.toml", b"#" * real)
    data = bytearray(buf.getvalue())
    struct.pack_into("<I", data, 22, claimed)  # local header: uncompressed size
    struct.pack_into("<I", data, data.rindex(b"PK\x01\x02") + 24, claimed)  # central directory
    path.write_bytes(bytes(data))
    return path


def _zip_with_bad_crc(path: Path) -> Path:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w", compression=zipfile.ZIP_STORED) as zf:
        zf.writestr("p/pack.toml", _header() + LOOK)
    data = bytearray(buf.getvalue())
    struct.pack_into("<I", data, data.rindex(b"PK\x01\x02") + 16, 12345)  # central directory: CRC-32
    path.write_bytes(bytes(data))
    return path


# --- makers: each writes one broken thing under tmp and returns what to check -----------------------------

def cube(text: str) -> Callable[[Path], Target]:
    return lambda tmp: partial(parse_cube, text, str(tmp / "look.cube"))


def missing_cube(tmp: Path) -> Target:
    return partial(load_lut, tmp / "missing.cube")


def missing_hald(tmp: Path) -> Target:
    return partial(load_lut, tmp / "missing.png")


def latin1_cube(tmp: Path) -> Target:
    (tmp / "look.cube").write_bytes(b'TITLE "caf\xe9"\nLUT_3D_SIZE 2\n')
    return partial(load_lut, tmp / "look.cube")


def member_too_big(tmp: Path) -> Target:
    archive = _zip(tmp / "big.zip", {"p/pack.toml": b"x", "p/big.bin": bytes(range(256)) * 8})
    return partial(safe_extract, archive, tmp / "dest", ArchiveLimits(max_total_bytes=1024))


def more_than_headers_say(tmp: Path) -> Target:
    archive = _zip_with_lying_size(tmp / "lie.zip", real=4000, claimed=10)
    return partial(safe_extract, archive, tmp / "dest", ArchiveLimits(max_total_bytes=100))


def absolute(tmp: Path) -> Target:
    return partial(safe_extract, _zip(tmp / "evil.zip", {"/etc/evil": b"x"}), tmp / "dest")


def link(tmp: Path) -> Target:
    return partial(safe_extract, _zip(tmp / "evil.zip", {"p/pack.toml": b"x"}, links=("p/link",)), tmp / "dest")


def too_many_members(tmp: Path) -> Target:
    archive = _zip(tmp / "many.zip", {f"p/{i}.cube": b"x" for i in range(4)})
    return partial(safe_extract, archive, tmp / "dest", ArchiveLimits(max_members=3))


def dotdot(tmp: Path) -> Target:
    archive = _zip(tmp / "evil.zip", {"p/pack.toml": b"x", "p/../../evil.txt": b"owned"})
    return partial(safe_extract, archive, tmp / "dest")


def expands_too_far(tmp: Path) -> Target:
    archive = _zip(tmp / "bomb.zip", {"p/bomb.cube": b"0" * 100_000})
    return partial(safe_extract, archive, tmp / "dest", ArchiveLimits(max_ratio=50))


def too_many_bytes(tmp: Path) -> Target:
    archive = _zip(tmp / "big.zip", {f"p/f{i}.bin": bytes(range(256)) * 1024 for i in range(5)})
    return partial(safe_extract, archive, tmp / "dest", ArchiveLimits(max_total_bytes=1 << 20))


def dest_symlink_outside(tmp: Path) -> Target:
    """The destination already holds a link named like the pack, pointing elsewhere: the checks on names
    all pass, only the resolved target gives it away."""
    archive = _zip(tmp / "ok.zip", {"p/pack.toml": b"x"})
    (tmp / "elsewhere").mkdir()
    (tmp / "dest").mkdir()
    (tmp / "dest" / "p").symlink_to(tmp / "elsewhere")
    return partial(safe_extract, archive, tmp / "dest")


def unreadable_zip(tmp: Path) -> Target:
    """A .zip that is a regular file but cannot be read (EIO even for root: this process's unmapped page 0)."""
    if not Path("/proc/self/mem").is_file():
        pytest.skip("needs Linux /proc")
    (tmp / "p.zip").symlink_to("/proc/self/mem")
    return tmp / "p.zip"


def bad_crc_zip(tmp: Path) -> Target:
    return _zip_with_bad_crc(tmp / "p.zip")


def look_pack(body: str, files: dict[str, bytes | Callable[[Path], object]] | None = None,
              head: str | None = None) -> Callable[[Path], Target]:
    return lambda tmp: _pack(tmp, (_header() if head is None else head) + body,
                             {"a.cube": cube_text(2).encode(), **(files or {})})


def sticker_pack(image: Callable[[Path], object] | bytes) -> Callable[[Path], Target]:
    return lambda tmp: _pack(tmp, _header() + STICKER, {"a.png": image})


def track_pack(body: str, files: dict[str, bytes | Callable[[Path], object]] | None = None) -> Callable[[Path], Target]:
    return lambda tmp: _pack(tmp, _header() + body, files or {})


def symlink_out_of_pack(tmp: Path) -> Target:
    (tmp / "outside.cube").write_text(cube_text(2))
    folder = _pack(tmp / "f", _header() + LOOK.replace("a.cube", "link.cube"), {})
    (folder / "link.cube").symlink_to(tmp / "outside.cube")
    return folder


def no_pack_toml(tmp: Path) -> Target:
    """validate() only picks folders holding pack.toml; load_packs (which it calls) is told folders."""
    (tmp / "p").mkdir()
    return partial(load_packs, {"looks": [tmp / "p"]})


def latin1_pack_toml(tmp: Path) -> Target:
    folder = _pack(tmp, "", {"a.cube": cube_text(2).encode()})
    (folder / "pack.toml").write_bytes(_header().replace("测试", "Caf\xe9").encode("latin-1") + LOOK.encode())
    return folder


def pack_toml_a_folder(tmp: Path) -> Target:
    """pack.toml that cannot be read as a file (here: a folder of that name)."""
    folder = _pack(tmp, "", {"a.cube": cube_text(2).encode()})
    (folder / "pack.toml").unlink()
    (folder / "pack.toml").mkdir()
    return folder


def defined_twice(tmp: Path) -> Target:
    return [_pack(tmp / "one", _header() + LOOK), _pack(tmp / "two", _header() + LOOK)]


def nothing_there(tmp: Path) -> Target:
    return tmp / "no-such-folder"


def empty_folder(tmp: Path) -> Target:
    (tmp / "empty").mkdir()
    return tmp / "empty"


def unreachable(why: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"BUG (cannot be triggered): {why}")


def wrong_line(why: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, reason=f"BUG (wrong line): {why}")


def crashes(exc: type[BaseException], why: str) -> pytest.MarkDecorator:
    return pytest.mark.xfail(strict=True, raises=exc, reason=f"BUG (not a PackError, validate crashes): {why}")


def lit(message: str) -> str:
    """The regex for exactly this message."""
    return f"^{re.escape(message)}$"


def row(name: str, make: Callable[[Path], Target], message: str, line: int | None,
        *marks: pytest.MarkDecorator) -> Any:
    return pytest.param(name, make, message, line, id=name, marks=marks)


ROWS = [
    # --- cube.py: .cube text and Hald CLUT files --------------------------------------------------------
    row("cube-file-not-found", missing_cube, r"^file not found$", None),
    row("hald-file-not-found", missing_hald, r"^file not found$", None),
    row("cube-not-utf8", latin1_cube, r"^not a UTF-8 text file \(a \.cube LUT is text\)$", None),
    row("cube-domain-not-numbers", cube("DOMAIN_MIN 0 x 0\nLUT_3D_SIZE 2\n"),
        r"^DOMAIN_MIN: expected numbers, got '0 x 0'$", 1),
    row("cube-domain-infinite", cube("LUT_3D_SIZE 2\nDOMAIN_MAX 1 inf 1\n"),
        r"^DOMAIN_MAX: NaN or infinity is not allowed$", 2),
    row("cube-domain-two-numbers", cube("LUT_3D_SIZE 2\nDOMAIN_MIN 0 0\n"), r"^DOMAIN_MIN takes three numbers$", 2),
    row("cube-size-after-rows", cube("LUT_3D_SIZE 2\n0 0 0\n# again\nLUT_3D_SIZE 2\n"),
        r"^LUT_3D_SIZE must come before the table rows$", 4),
    row("cube-size-not-whole", cube("TITLE \"x\"\nLUT_3D_SIZE 2.5\n"), r"^LUT_3D_SIZE takes one whole number$", 2),
    row("cube-input-range", cube("LUT_3D_SIZE 2\nLUT_3D_INPUT_RANGE 0 1\n"),
        r"^LUT_3D_INPUT_RANGE is not supported; use the 0\.\.1 domain$", 2),
    row("cube-size-missing", cube('TITLE "no size"\n'), r"^missing LUT_3D_SIZE$", None),
    # Tested in test_cube, but by fragments ("three numbers", "1D", "outside", "expected numbers") that
    # other messages share or too short to tell apart: here with the whole message, for the check below.
    row("cube-row-not-number", cube("LUT_3D_SIZE 2\n0 0 0\n1 0 x\n"), lit("table row: expected numbers, got 'x'"), 3),
    row("cube-size-outside", cube("LUT_3D_SIZE 66\n"), lit("LUT_3D_SIZE 66 is outside 2..65"), 1),
    row("cube-row-two-numbers", cube("LUT_3D_SIZE 2\n0 0 0\n1 1\n"),
        r"^a table row has three numbers, this one has 2$", 3),
    row("cube-1d", cube("# a 1D LUT\nLUT_1D_SIZE 1024\n"),
        r"^1D LUTs are not supported; export a 3D LUT \(LUT_3D_SIZE\)$", 2),
    row("cube-unit-domain", cube("LUT_3D_SIZE 2\nDOMAIN_MIN -1 0 0\n" + "0 0 0\n" * 8),
        r"^only the 0\.\.1 domain is supported \(DOMAIN_MIN 0 0 0, DOMAIN_MAX 1 1 1\)$", None),

    # --- archive.py: pack .zip archives ---------------------------------------------------------------
    row("zip-member-too-big", member_too_big,
        r"^'p/big\.bin': 2048 bytes is more than a pack may hold \(\d+ bytes\)$", None),
    # A header that lies about a member's size: zipfile stops at the header's size and the CRC fails.
    row("zip-more-than-headers-say", more_than_headers_say, r"^'.+' is corrupt \(.+\); build the archive again$",
        None),
    row("zip-bad-crc", bad_crc_zip, r"^'.+' is corrupt \(.+\); build the archive again$", None),
    # Tested in test_pack_archive by fragments ("'..'", "zip bomb", "links", …) too short or shared.
    row("zip-absolute", absolute, lit("'/etc/evil': absolute or Windows path in the archive"), None),
    row("zip-link", link, lit("'p/link': links and special files are not allowed in a pack"), None),
    row("zip-members", too_many_members, lit("4 members; a pack has at most 3"), None),
    row("zip-dotdot", dotdot, lit("'p/../../evil.txt': '..' in a path (it would write outside the pack)"), None),
    row("zip-ratio", expands_too_far, r"^'p/bomb\.cube': expands \d+× \(a zip bomb\?\)$", None),
    row("zip-total-bytes", too_many_bytes, r"^expands to more than 1 MB in all$", None),
    row("zip-writes-through-link", dest_symlink_outside, r"^'p/pack\.toml': would write outside the pack$", None),
    row("zip-unreadable", unreadable_zip, r"^cannot read the archive \(.+\)$", None),

    # --- manifest.py: pack.toml -------------------------------------------------------------------------
    row("toml-not-utf8", latin1_pack_toml, r"^pack\.toml is not UTF-8 text \(byte \d+\); save it as UTF-8$", None),
    row("toml-unreadable", pack_toml_a_folder, r"^pack\.toml cannot be read \(.+\)$", None),
    row("toml-missing", no_pack_toml, r"^missing pack\.toml$", None),
    row("toml-unknown-top-level-key", look_pack(LOOK, head="colour = \"red\"\n" + _header()),
        r"^unknown top-level key 'colour'$", 1),
    row("toml-no-pack-table", look_pack(LOOK, head=""), r"^missing \[pack\] table$", None),
    row("toml-unknown-pack-key", look_pack(LOOK, head=_header() + 'homepage = "https://example.com"\n'),
        r"^unknown key 'homepage' in \[pack\]$", 7),
    row("toml-pack-id-pattern", look_pack(LOOK, head=_header("Bad ID")),
        lit("pack.id 'Bad ID': use 1–40 of a-z, 0-9, '-', '_'"), 2),
    row("toml-pack-id-missing", look_pack(LOOK, head=_header().replace('id = "p"\n', "")),
        r"^pack\.id is required and must be a non-empty string$", None),
    row("toml-no-items", look_pack("", head=_header()), r"^a looks pack needs at least one \[\[looks\]\] table$", None),
    row("toml-item-not-table", look_pack("", head='looks = ["warm"]\n' + _header()),
        r"^looks\[0\] must be a table \(\[\[looks\]\]\)$", None),
    row("toml-item-id-pattern", look_pack(LOOK.replace('"a"', '"A b"', 1)),
        lit("looks[0].id 'A b': use 1–40 of a-z, 0-9, '-', '_'"), ITEM),
    row("toml-item-key-missing", look_pack(LOOK.replace('lut = "a.cube"\n', "")),
        r"^looks\[0\]\.lut is required and must be a non-empty string$", ITEM),
    row("toml-track-key-missing", track_pack(TRACK.replace('artist = "x"\n', "") + TRACK.replace('"a"', '"b"', 1)),
        r"^tracks\[0\]\.artist is required and must be a non-empty string$", ITEM),
    # Tested in test_packs, by fragments that span a {…} of the message: here whole, for the check below.
    row("toml-other-kind", look_pack(LOOK + STICKER), lit("a looks pack cannot hold [[stickers]]"), ITEM + 5),
    row("toml-unknown-item-key", look_pack(LOOK + "colour = 1\n"), lit("unknown key 'colour' in looks[0]"), ITEM + 4),
    row("toml-duplicate-id", look_pack(LOOK + LOOK), lit(f"duplicate id 'a' (first at line {ITEM})"), ITEM + 5),
    row("toml-title-not-table", look_pack(LOOK.replace('{ en = "A", zh = "甲" }', '"A"')),
        lit("""looks[0].title must be a table with exactly 'en' and 'zh', like { en = "Warm", zh = "暖阳" }"""), ITEM),
    row("toml-title-empty", look_pack(LOOK.replace('en = "A"', 'en = " "')),
        r"^looks\[0\]\.title: 'en' and 'zh' must be non-empty strings$", ITEM),
    row("toml-tags-not-list", look_pack(LOOK + 'tags = "warm"\n'), r"^looks\[0\]\.tags must be a list of strings$",
        ITEM),
    row("toml-number-not-number", look_pack(LOOK + 'intensity = "high"\n'),
        r"^looks\[0\]\.intensity must be a number between 0\.0 and 1\.0$", ITEM),
    row("toml-asset-symlink-out", symlink_out_of_pack, r"^'link\.cube' points outside the pack folder$", ITEM),
    row("toml-loop-shape", track_pack(TRACK + "loop = 5\n"), r"^tracks\[0\]\.loop must be \{ start = …, end = … \}$",
        TRACK_EXTRA),
    row("toml-loop-too-short", track_pack(TRACK + "loop = { start = 2, end = 2.5 }\n"),
        r"^tracks\[0\]\.loop must be at least 1 s long$", TRACK_EXTRA),

    # --- registry.py: the files items point at ------------------------------------------------------------
    # Tested in test_packs, test_packs_validate and test_pack_items by fragments ("alpha", "PNG or WebP",
    # "anchor must be one of center") too short, shared or spanning a {…}.
    row("sticker-no-alpha", sticker_pack(_image((4, 4), "RGB")),
        lit("a.png: a sticker needs an alpha channel (transparency)"), ITEM),
    row("sticker-format", sticker_pack(_image((4, 4), "RGB", "JPEG")),
        lit("a.png: stickers are PNG or WebP (APNG, animated WebP or GIF when animated), this is JPEG"), ITEM),
    row("sticker-anchor", lambda tmp: _pack(tmp, _header() + STICKER + 'anchor = "middle"\n',
                                            {"a.png": _image((4, 4))}),
        lit("stickers[0].anchor must be one of center, top, bottom, left, right, top-left, top-right, bottom-left, "
            "bottom-right or [x, y] with both in 0..1 (fractions of the sticker's width and height, [0.5, 1.0] = "
            "bottom centre)"), ITEM + 4),
    row("sticker-unreadable", sticker_pack(b"\x89PNG\r\n\x1a\nnot really"),
        r"^a\.png: not a readable image \(.+\)$", ITEM),
    row("sticker-too-many-frames", sticker_pack(_apng(121)),
        r"^a\.png: 121 frames; an animated sticker has at most 120$", ITEM),
    row("sticker-too-large", sticker_pack(_image((2049, 1))), r"^a\.png: 2049×1 is larger than 2048×2048$", ITEM),
    row("preview-unreadable", look_pack(LOOK + 'preview = "p.jpg"\n', {"p.jpg": b"\xff\xd8\xff not a jpeg"}),
        r"^p\.jpg: not a readable image \(.+\)$", ITEM),
    row("preview-too-large", look_pack(LOOK + 'preview = "p.png"\n', {"p.png": _image((4097, 2), "RGB")}),
        r"^p\.png: 4097×2; a preview is at most 4096 px on its long side \(640 is plenty\)$", ITEM),
    row("track-unreadable", track_pack(TRACK, {"a.ogg": b"OggS not really"}),
        r"^a\.ogg: not a readable audio file \(.+\)$", ITEM),
    row("track-too-short", track_pack(TRACK, {"a.ogg": _audio(2)}), r"^a\.ogg: 2\.0 s long; tracks are 5–600 s$",
        ITEM),
    row("track-loop-past-end", track_pack(TRACK + "loop = { start = 1, end = 9.5 }\n", {"a.ogg": _audio(6)}),
        r"^a\.ogg: loop ends at 9\.5 s, after the track's end \(6\.\d+ s\)$", ITEM),
    row("track-loudness-unmeasurable", track_pack(TRACK.replace("a.ogg", "a.m4a"), {"a.m4a": _truncated_m4a}),
        r"^a\.m4a: loudness could not be measured \(.+\)$", ITEM),
    # test_packs_validate finds this one but does not check its line.
    row("track-silent", track_pack(TRACK, {"a.ogg": _audio(6, "anullsrc=cl=mono")}),
        r"^a\.ogg: silent or nearly so \(-\d+ LUFS\); check the export$", ITEM),
    row("pack-defined-twice", defined_twice, r"^pack id 'p' is defined twice$", None),

    # --- validate.py: what the command is given ------------------------------------------------------------
    row("validate-no-such-path", nothing_there, r"^no such file or folder$", None),
    row("validate-no-pack-here", empty_folder, r"^no pack\.toml found here$", None),
]


def problems_of(target: Target) -> list[PackError]:
    if callable(target):
        try:
            target()
        except PackError as problem:
            return [problem]
        return []
    _, problems = validate(target if isinstance(target, list) else [target])
    return problems


@pytest.mark.parametrize(("name", "make", "message", "line"), ROWS)
def test_each_error(tmp_path: Path, name: str, make: Callable[[Path], Target], message: str,
                    line: int | None) -> None:
    problems = problems_of(make(tmp_path))
    shown = "\n".join(str(p) for p in problems) or "(no problem)"
    hits = [p for p in problems if re.search(message, p.problem)]
    assert len(hits) == 1, f"{name}: expected one problem matching {message!r}, got:\n{shown}"
    assert hits[0].line == line, f"{name}: at line {hits[0].line}, expected {line}:\n{shown}"
    where = f"{hits[0].path}:{line}" if line else hits[0].path
    assert str(hits[0]) == f"{where}: {hits[0].problem}"


# --- every error in the source has a test --------------------------------------------------------------------

PLACEHOLDER = None  # an f-string's {…} in a template's parts


def source_templates() -> dict[tuple[str | None, ...], list[str]]:
    """Each PackError message in media_service/packs/*.py as its parts (literal text, or None for a {…}),
    with where it is raised; identical templates raised in several places share one entry."""
    found: dict[tuple[str | None, ...], list[str]] = {}
    for source in sorted((REPO / "media_service" / "packs").glob("*.py")):
        for node in ast.walk(ast.parse(source.read_text(encoding="utf-8"))):
            if not (isinstance(node, ast.Call) and isinstance(node.func, ast.Name | ast.Attribute)
                    and (node.func.id if isinstance(node.func, ast.Name) else node.func.attr) == "PackError"):
                continue
            message = node.args[2] if len(node.args) > 2 else next(
                (k.value for k in node.keywords if k.arg == "problem"), None)
            where = f"{source.name}:{node.lineno}"
            if isinstance(message, ast.Constant) and isinstance(message.value, str):
                parts: tuple[str | None, ...] = (message.value,)
            elif isinstance(message, ast.JoinedStr):
                parts = tuple(str(v.value) if isinstance(v, ast.Constant) else PLACEHOLDER for v in message.values)
            elif isinstance(message, ast.Attribute) and message.attr == "problem":
                continue  # a problem passed on under another name (validate._shown)
            else:
                raise AssertionError(f"{where}: write the PackError message as a string or f-string so that "
                                     "this test can read it")
            found.setdefault(parts, []).append(where)
    return found


def _literal_length(parts: tuple[str | None, ...]) -> int:
    return sum(len(p) for p in parts if p)


@functools.cache
def _pattern(parts: tuple[str | None, ...]) -> re.Pattern[str]:
    """A rendered message of the template, found inside a longer string (a path and line may precede it).
    A leading or trailing {…} only asks for one character there (``.+?`` at the start is slow to search)."""
    inner = list(parts)
    lead = bool(inner) and inner[0] is PLACEHOLDER
    trail = len(inner) > 1 and inner[-1] is PLACEHOLDER
    inner = inner[1 if lead else 0:len(inner) - 1 if trail else len(inner)]
    body = "".join(re.escape(p) if p is not PLACEHOLDER else ".+?" for p in inner)
    return re.compile(("(?<=.)" if lead else "") + body + ("(?=.)" if trail else ""), re.DOTALL)


@functools.cache
def _longest(parts: tuple[str | None, ...]) -> str:
    return max((p for p in parts if p), key=len, default="")


@functools.cache
def _literal(parts: tuple[str | None, ...]) -> str:
    """The template's literal runs, apart (a fragment must lie within one)."""
    return "\0".join(p or "" for p in parts)


def covered_by(text: str, templates: list[tuple[str | None, ...]]) -> tuple[str | None, ...] | None:
    """The one template ``text`` shows a test for: ``text`` is a rendered message of it (the most specific
    such template), or a fragment of its literal text of two words or more found in no other template (one
    word, like "alpha" or "stickers", says too little to be told from any other string of a test)."""
    if len(text) > 2000:  # pack bodies and the like, not messages
        return None
    rendered = [t for t in templates if _longest(t) in text and _pattern(t).search(text)]
    if rendered:
        best = max(_literal_length(t) for t in rendered)
        top = [t for t in rendered if _literal_length(t) == best]
        if len(top) == 1:
            return top[0]
    fragment = text.strip()
    if len(re.findall(r"[A-Za-z]{2,}", fragment)) >= 2:
        holders = [t for t in templates if fragment in _literal(t)]
        if len(holders) == 1:
            return holders[0]
    return None


def _sample(pattern: str) -> str:
    """A message a table row's regex accepts: anchors dropped, ``.+`` read as "x" and ``\\d+`` as "0",
    escapes undone (the rows' regexes are escaped literals apart from those)."""
    text = re.sub(r"(?<!\\)(?:\^|\$)", "", pattern)
    text = re.sub(r"(?<!\\)\.[+*]\??", "x", text)
    text = re.sub(r"(?<!\\)\\d[+*]?", "0", text)
    return re.sub(r"\\(.)", r"\1", text)


def _string_constants(source: str) -> list[str]:
    out: list[str] = []
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            out.append(node.value)
    return out


def _table_rows() -> list[tuple[str, str, bool]]:
    """(name, message regex, whether it evidences a template): a row whose error escapes as another
    exception (a crash) is not a test of any PackError message."""
    rows = []
    for param in ROWS:
        crash = any(m.name == "xfail" and "raises" in m.kwargs for m in param.marks)
        rows.append((param.values[0], param.values[2], not crash))
    return rows


def test_every_pack_error_message_has_a_test() -> None:
    templates = source_templates()
    assert len(templates) > 60, "the PackError calls were not found: has the package moved?"
    keys = list(templates)
    covered: dict[tuple[str | None, ...], str] = {}

    for name, pattern, evidence in _table_rows():
        if not evidence:
            continue
        t = covered_by(_sample(pattern), keys)
        assert t is not None, f"row {name!r}: {pattern!r} matches no one PackError message in the source"
        covered.setdefault(t, f"{Path(__file__).name}::{name}")

    me = Path(__file__).resolve()
    for test_file in sorted((REPO / "tests").rglob("*.py")):
        source = test_file.read_text(encoding="utf-8")
        if test_file.resolve() == me or not ("PackError" in source or ".problem" in source):
            continue
        for text in dict.fromkeys(_string_constants(source)):
            # A test's string is a message, a fragment of one, or a regex for one.
            if (t := covered_by(text, keys) or covered_by(re.sub(r"\\(.)", r"\1", text), keys)) is not None:
                covered.setdefault(t, str(test_file.relative_to(REPO)))

    missing = ["".join(p if p is not PLACEHOLDER else "{…}" for p in t) + f"  ({', '.join(templates[t])})"
               for t in keys if t not in covered]
    assert not missing, ("PackError messages with no test (add a row to ROWS above):\n  " + "\n  ".join(missing))
