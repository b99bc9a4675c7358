"""Pack archives: built deterministically; hostile archives refused with nothing written outside."""

from __future__ import annotations

import stat
import zipfile
from pathlib import Path

import pytest

from media_service.errors import PackError
from media_service.packs.archive import ArchiveLimits, build_zip, extract_or_clean
from media_service.packs.validate import validate
from tests.support.packs import write_look_pack


def test_build_is_deterministic_and_round_trips(tmp_path: Path) -> None:
    pack = write_look_pack(tmp_path / "src") / "tlooks"
    a = build_zip(pack, tmp_path / "a.zip").read_bytes()
    b = build_zip(pack, tmp_path / "b.zip").read_bytes()
    assert a == b
    root = extract_or_clean(tmp_path / "a.zip", tmp_path / "out")
    assert root.name == "tlooks" and (root / "pack.toml").is_file()
    registry, problems = validate([root])
    assert problems == [] and set(registry.looks) == {"tlooks/warm", "tlooks/identity"}


def _zip(path: Path, members: list[tuple[str, bytes]], *, symlink: str | None = None) -> Path:
    with zipfile.ZipFile(path, "w", compression=zipfile.ZIP_DEFLATED) as zf:
        for name, data in members:
            zf.writestr(name, data)
        if symlink:
            info = zipfile.ZipInfo(symlink)
            info.external_attr = (stat.S_IFLNK | 0o777) << 16
            zf.writestr(info, "/etc/passwd")
    return path


@pytest.mark.parametrize(
    ("members", "symlink", "words"),
    [
        ([("p/pack.toml", b"x"), ("p/../../evil.txt", b"owned")], None, "'..'"),
        ([("/etc/evil", b"x")], None, "absolute"),
        ([("p/pack.toml", b"x"), ("C:/evil", b"x")], None, "absolute"),
        ([("p/pack.toml", b"x")], "p/link", "links"),
        ([("p/pack.toml", b"x"), ("q/pack.toml", b"x")], None, "exactly one folder"),
        ([("pack.toml", b"x")], None, "exactly one folder"),
        ([("p/bomb.cube", b"0" * 5_000_000)], None, "zip bomb"),
        ([(f"p/f{i}.txt", b"x") for i in range(30)], None, "members"),
    ],
)
def test_hostile_archives_refused(tmp_path: Path, members: list[tuple[str, bytes]], symlink: str | None,
                                  words: str) -> None:
    archive = _zip(tmp_path / "evil.zip", members, symlink=symlink)
    dest = tmp_path / "x" / "dest"
    with pytest.raises(PackError) as info:
        extract_or_clean(archive, dest, ArchiveLimits(max_members=20, max_total_bytes=10_000_000, max_ratio=100))
    assert words in info.value.problem
    assert not dest.exists()
    assert not (tmp_path / "evil.txt").exists() and not (tmp_path / "x" / "evil.txt").exists()


def test_not_a_zip(tmp_path: Path) -> None:
    bad = tmp_path / "bad.zip"
    bad.write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(PackError, match="not a readable zip"):
        extract_or_clean(bad, tmp_path / "d")


def test_too_many_bytes_in_all(tmp_path: Path) -> None:
    archive = _zip(tmp_path / "big.zip", [(f"p/f{i}.bin", bytes(range(256)) * 400) for i in range(5)])
    with pytest.raises(PackError, match="expands to more than"):
        extract_or_clean(archive, tmp_path / "d", ArchiveLimits(max_total_bytes=300_000))


def test_local_zip_packs_load_beside_folders(tmp_path: Path) -> None:
    from media_service.packs import load_registry
    from tests.support.packs import write_look_pack

    src = write_look_pack(tmp_path / "src", "zipped")
    root = tmp_path / "filters"
    write_look_pack(root, "folder")
    build_zip(src / "zipped", root / "zipped-1.0.0.zip")
    cache = tmp_path / "cache"
    registry = load_registry([root], [], cache=cache)
    assert {"folder/warm", "zipped/warm"} <= set(registry.looks)
    # Extracted once per content: loading again reuses it; a changed archive gets its own folder.
    assert len(list(cache.iterdir())) == 1
    load_registry([root], [], cache=cache)
    assert len(list(cache.iterdir())) == 1
    # And a root may itself be one archive.
    assert set(load_registry([root / "zipped-1.0.0.zip"], [], cache=cache).looks) == {"zipped/warm",
                                                                                          "zipped/identity"}


def test_validate_a_zip_names_problems_inside_it(tmp_path: Path) -> None:
    from media_service.packs.validate import validate
    from tests.support.packs import write_look_pack

    src = write_look_pack(tmp_path / "src", "zipped")
    (src / "zipped" / "luts" / "warm.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n")
    archive = build_zip(src / "zipped", tmp_path / "zipped.zip")
    _, problems = validate([archive])
    assert [(p.path, p.problem) for p in problems] == [
        (f"{archive}:zipped/luts/warm.cube", "LUT_3D_SIZE 2 needs 8 rows, found 1")]
    evil = _zip(tmp_path / "evil.zip", [("../x.cube", b"1")])
    _, problems = validate([evil])
    assert len(problems) == 1 and "'..'" in problems[0].problem and problems[0].path == str(evil)
    assert not (tmp_path / "x.cube").exists()


def test_broken_local_zip_stops_the_load(tmp_path: Path) -> None:
    from media_service.packs import load_registry

    root = tmp_path / "filters"
    root.mkdir()
    (root / "broken.zip").write_bytes(b"PK\x03\x04 not really")
    with pytest.raises(PackError, match="not a readable zip"):
        load_registry([root], [], cache=tmp_path / "cache")
