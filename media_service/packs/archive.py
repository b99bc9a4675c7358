"""Pack archives: build a .zip from a pack folder, and extract one without trusting it.

Extraction refuses absolute paths, `..`, links and special files, too many members, too many bytes in
all and members that expand too far (zip bombs), before writing anything; then writes only regular files
under the destination; a member whose bytes do not match its header fails its CRC and stops the extraction.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import stat
import tempfile
import zipfile
import zlib
from dataclasses import dataclass
from pathlib import Path, PurePosixPath

from media_service.errors import PackError

MAX_MEMBERS = 2000
MAX_TOTAL_BYTES = 200 * 1024 * 1024
MAX_RATIO = 200  # uncompressed / compressed for one member (text LUTs compress ≈5–10×)
SKIP_NAMES = {".DS_Store", "Thumbs.db"}


@dataclass(frozen=True)
class ArchiveLimits:
    max_members: int = MAX_MEMBERS
    max_total_bytes: int = MAX_TOTAL_BYTES
    max_ratio: int = MAX_RATIO


def build_zip(pack_dir: Path, out: Path, generated: dict[str, bytes] | None = None) -> Path:
    """A deterministic archive of the pack folder (sorted names, fixed timestamps), `<id>/…` inside;
    ``generated``: files written by the build itself (they replace a file of the same name)."""
    generated = generated or {}
    files = sorted(p for p in pack_dir.rglob("*") if p.is_file() and not p.is_symlink() and p.name not in SKIP_NAMES
                   and not any(part.startswith(".") for part in p.relative_to(pack_dir).parts))
    out.parent.mkdir(parents=True, exist_ok=True)
    members = {path.relative_to(pack_dir).as_posix(): path.read_bytes() for path in files} | generated
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_DEFLATED, compresslevel=9) as zf:
        for name, data in sorted(members.items()):
            info = zipfile.ZipInfo(f"{pack_dir.name}/{name}", date_time=(2020, 1, 1, 0, 0, 0))
            info.compress_type = zipfile.ZIP_DEFLATED
            info.external_attr = (stat.S_IFREG | 0o644) << 16
            zf.writestr(info, data)
    return out


def _size(n: int) -> str:
    return f"{n / (1 << 20):.0f} MB" if n >= 1 << 20 else f"{n} bytes"


def _check_member(info: zipfile.ZipInfo, archive: str, limits: ArchiveLimits) -> PurePosixPath | None:
    name = info.filename
    path = PurePosixPath(name)
    if name.startswith(("/", "\\")) or (len(name) > 1 and name[1] == ":") or "\\" in name:
        raise PackError(archive, None, f"{name!r}: absolute or Windows path in the archive")
    if any(part in ("..", "") for part in path.parts[:-1]) or ".." in path.parts:
        raise PackError(archive, None, f"{name!r}: '..' in a path (it would write outside the pack)")
    kind = stat.S_IFMT(info.external_attr >> 16)  # 0 when the archiver recorded no Unix type
    if kind and kind not in (stat.S_IFREG, stat.S_IFDIR):
        raise PackError(archive, None, f"{name!r}: links and special files are not allowed in a pack")
    if info.is_dir():
        return None
    if info.file_size > limits.max_total_bytes:
        raise PackError(archive, None, f"{name!r}: {_size(info.file_size)} is more than a pack may hold "
                                       f"({_size(limits.max_total_bytes)})")
    if info.compress_size and info.file_size / info.compress_size > limits.max_ratio:
        raise PackError(archive, None, f"{name!r}: expands {info.file_size // max(info.compress_size, 1)}× "
                                       "(a zip bomb?)")
    return path


def safe_extract(archive: Path, dest: Path, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """Extract ``archive`` into the empty folder ``dest``; returns the pack folder inside it."""
    where = str(archive)
    try:
        zf = zipfile.ZipFile(archive)
    except (zipfile.BadZipFile, OSError) as exc:
        raise PackError(where, None, f"not a readable zip archive ({exc})") from None
    with zf:
        members = zf.infolist()
        if len(members) > limits.max_members:
            raise PackError(where, None, f"{len(members)} members; a pack has at most {limits.max_members}")
        files = [(m, p) for m in members if (p := _check_member(m, where, limits)) is not None]
        if sum(m.file_size for m in members) > limits.max_total_bytes:
            raise PackError(where, None, f"expands to more than {_size(limits.max_total_bytes)} in all")
        tops = {p.parts[0] for _, p in files}
        if len(tops) != 1 or any(len(p.parts) < 2 for _, p in files):
            raise PackError(where, None, "a pack archive holds exactly one folder (named like the pack) with "
                                         "pack.toml inside")
        dest.mkdir(parents=True, exist_ok=True)
        root = dest.resolve()
        for info, path in files:
            target = (root / Path(*path.parts)).resolve()
            if not target.is_relative_to(root):
                raise PackError(where, None, f"{info.filename!r}: would write outside the pack")
            target.parent.mkdir(parents=True, exist_ok=True)
            try:
                with zf.open(info) as src, open(target, "xb") as out:
                    # zipfile stops each member at its header's size, so a lying header cannot write more
                    # than the total checked above; it ends here as a CRC or inflate error.
                    while chunk := src.read(1 << 16):
                        out.write(chunk)
            except (zipfile.BadZipFile, zlib.error, EOFError) as exc:
                raise PackError(where, None, f"{info.filename!r} is corrupt ({exc}); build the archive again") \
                    from None
        return root / next(iter(tops))


def extract_or_clean(archive: Path, dest: Path, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    try:
        return safe_extract(archive, dest, limits)
    except BaseException:
        shutil.rmtree(dest, ignore_errors=True)
        raise


def default_cache() -> Path:
    """Where pack loading keeps what it derives (extracted local archives, measurements) when not told."""
    return Path(tempfile.gettempdir()) / f"notes-media-packs-{os.getuid()}"


def unpacked(archive: Path, cache: Path | None = None, limits: ArchiveLimits = ArchiveLimits()) -> Path:
    """A local pack archive's folder, extracted once per content (by hash) into ``cache``; a designer who
    replaces the .zip gets the new content at the next load, and a broken archive raises PackError."""
    digest = hashlib.sha256()
    try:
        with open(archive, "rb") as f:
            while chunk := f.read(1 << 20):
                digest.update(chunk)
    except OSError as exc:
        raise PackError(str(archive), None, f"cannot read the archive ({exc.strerror})") from None
    target = (cache or default_cache() / "local-zips") / digest.hexdigest()[:24]
    done = target / ".ok"
    if not done.exists():
        shutil.rmtree(target, ignore_errors=True)
        target.parent.mkdir(parents=True, exist_ok=True)
        # Extracted beside the target and renamed into place, so concurrent loaders never see half of it.
        tmp = Path(tempfile.mkdtemp(prefix=".unpack-", dir=target.parent))
        try:
            extract_or_clean(archive, tmp / "x", limits)
            (tmp / ".ok").touch()
            tmp.rename(target)
        except OSError:
            shutil.rmtree(tmp, ignore_errors=True)
            if not done.exists():
                raise
        except BaseException:
            shutil.rmtree(tmp, ignore_errors=True)
            raise
    return next(p for p in (target / "x").iterdir() if p.is_dir())
