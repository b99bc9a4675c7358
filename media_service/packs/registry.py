"""The immutable pack registry: every pack validated at load; lookups by "<pack>/<item>" id."""

from __future__ import annotations

import dataclasses
import threading
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image, ImageFilter

from media_service.errors import MediaError, PackError
from media_service.geometry import CENTRE, Margins
from media_service.packs.archive import default_cache, unpacked
from media_service.packs.cube import Lut, fold_intensity, load_lut
from media_service.packs.loudness import Loudness, cached_measure, file_digest, stored
from media_service.packs.manifest import Manifest, PackInfo, RawItem, Title, load_manifest

MAX_STICKER_SIDE = 2048


@dataclass(frozen=True)
class Look:
    id: str
    title: Title
    intensity: float
    tags: tuple[str, ...]
    pack: PackInfo
    lut: Lut
    preview: Path | None = None  # the designer's own before/after image; a generated chart otherwise

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title.as_dict(), "intensity": self.intensity,
                "tags": list(self.tags), "pack": self.pack.id, "version": self.pack.version}


@dataclass(frozen=True)
class StickerItem:
    id: str
    title: Title
    scale: float
    tags: tuple[str, ...]
    pack: PackInfo
    path: Path
    width: int
    height: int
    frames: int = 1
    anchor: tuple[float, float] = CENTRE
    safe_area: Margins | None = None

    @property
    def animated(self) -> bool:
        return self.frames > 1

    def public(self) -> dict[str, Any]:
        safe = None if self.safe_area is None else dataclasses.asdict(self.safe_area)
        return {"id": self.id, "title": self.title.as_dict(), "scale": self.scale, "anchor": list(self.anchor),
                "safe_area": safe, "tags": list(self.tags), "width": self.width, "height": self.height,
                "animated": self.animated, "pack": self.pack.id, "version": self.pack.version}


@dataclass(frozen=True)
class Track:
    id: str
    title: Title
    artist: str
    license: str
    source: str
    tags: tuple[str, ...]
    pack: PackInfo
    path: Path
    duration: float
    loop: tuple[float, float] | None
    loudness: Loudness  # measured at validation, stored in the built pack

    def public(self) -> dict[str, Any]:
        return {"id": self.id, "title": self.title.as_dict(), "artist": self.artist, "license": self.license,
                "duration": round(self.duration, 2), "loop": list(self.loop) if self.loop else None,
                "loudness": self.loudness.summary(), "tags": list(self.tags), "pack": self.pack.id,
                "version": self.pack.version}


MIN_TRACK_SECONDS, MAX_TRACK_SECONDS = 5.0, 600.0
SILENT_LUFS = -50.0


def _check_sticker(path: Path, manifest: str, line: int | None) -> tuple[int, int, int]:
    try:
        with Image.open(path) as img:
            fmt, mode, size = img.format, img.mode, img.size
            frames = getattr(img, "n_frames", 1)
            has_alpha = mode in ("RGBA", "LA", "PA") or (mode == "P" and "transparency" in img.info)
    except (OSError, Image.DecompressionBombError) as exc:
        raise PackError(manifest, line, f"{path.name}: not a readable image ({exc})") from None
    if fmt not in ("PNG", "WEBP") and not (fmt == "GIF" and frames > 1):
        raise PackError(manifest, line, f"{path.name}: stickers are PNG or WebP (APNG, animated WebP or GIF "
                                        f"when animated), this is {fmt}")
    if frames > MAX_STICKER_FRAMES:
        raise PackError(manifest, line, f"{path.name}: {frames} frames; an animated sticker has at most "
                                        f"{MAX_STICKER_FRAMES}")
    if not has_alpha:
        raise PackError(manifest, line, f"{path.name}: a sticker needs an alpha channel (transparency)")
    if max(size) > MAX_STICKER_SIDE:
        raise PackError(manifest, line, f"{path.name}: {size[0]}×{size[1]} is larger than "
                                        f"{MAX_STICKER_SIDE}×{MAX_STICKER_SIDE}")
    return size[0], size[1], frames


MAX_STICKER_FRAMES = 120
MAX_PREVIEW_SIDE = 4096


def _check_preview(path: Path, manifest: str, line: int | None) -> None:
    try:
        with Image.open(path) as img:
            fmt, size = img.format, img.size
    except (OSError, Image.DecompressionBombError) as exc:
        raise PackError(manifest, line, f"{path.name}: not a readable image ({exc})") from None
    if fmt not in ("JPEG", "PNG", "WEBP"):
        raise PackError(manifest, line, f"{path.name}: a look's preview is a JPEG, PNG or WebP, this is {fmt}")
    if max(size) > MAX_PREVIEW_SIDE:
        raise PackError(manifest, line, f"{path.name}: {size[0]}×{size[1]}; a preview is at most "
                                        f"{MAX_PREVIEW_SIDE} px on its long side (640 is plenty)")


@dataclass
class PackRegistry:
    looks: dict[str, Look]
    stickers: dict[str, StickerItem]
    tracks: dict[str, Track] = field(default_factory=dict)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)
    _filters: dict[tuple[str, float], ImageFilter.Color3DLUT] = field(default_factory=dict, repr=False)
    _sticker_images: dict[str, Image.Image] = field(default_factory=dict, repr=False)

    def has_look(self, item_id: str) -> bool:
        return item_id in self.looks

    def has_sticker(self, item_id: str) -> bool:
        return item_id in self.stickers

    def has_track(self, item_id: str) -> bool:
        return item_id in self.tracks

    def look_lut(self, item_id: str, intensity: float | None) -> Lut:
        look = self.looks[item_id]
        return fold_intensity(look.lut, look.intensity if intensity is None else intensity)

    def look_filter(self, item_id: str, intensity: float | None) -> ImageFilter.Color3DLUT:
        """Pillow's 3D LUT filter with the intensity folded in; cached per (look, intensity)."""
        look = self.looks[item_id]
        key = (item_id, round(look.intensity if intensity is None else intensity, 3))
        with self._lock:
            cached = self._filters.get(key)
        if cached is None:
            lut = fold_intensity(look.lut, key[1])
            cached = ImageFilter.Color3DLUT(lut.size, lut.flat(), channels=3)
            with self._lock:
                if len(self._filters) > 256:
                    self._filters.clear()
                self._filters[key] = cached
        return cached

    def sticker_frames(self, item_id: str) -> list[tuple[Image.Image, int]]:
        """Every frame of an animated sticker as RGBA with its duration in ms (not cached: video only)."""
        frames: list[tuple[Image.Image, int]] = []
        with Image.open(self.stickers[item_id].path) as img:
            for index in range(getattr(img, "n_frames", 1)):
                img.seek(index)
                frames.append((img.convert("RGBA"), int(img.info.get("duration") or 100)))
        return frames

    def sticker_image(self, item_id: str) -> Image.Image:
        """The sticker decoded once as RGBA; callers must not modify it."""
        with self._lock:
            cached = self._sticker_images.get(item_id)
        if cached is None:
            item = self.stickers[item_id]
            with Image.open(item.path) as img:
                img.load()
                cached = img.convert("RGBA")
            with self._lock:
                self._sticker_images[item_id] = cached
        return cached


Problems = list[PackError] | None


def pack_folders(roots: Iterable[Path], zip_cache: Path | None = None, problems: Problems = None,
                 shown_as: dict[Path, str] | None = None) -> list[Path]:
    """The pack folders of each root: a root is a pack folder itself (it has pack.toml), one pack .zip, or a
    folder of pack folders and pack .zip archives (like filters/). A broken archive raises, or (validating)
    is recorded and skipped. ``shown_as`` learns, for each archive's extracted folder, how to name it in a
    problem (``pack.zip:<folder>``)."""
    dirs: list[Path] = []
    for root in roots:
        if (root / "pack.toml").exists():
            dirs.append(root)
            continue
        if root.is_file() and root.suffix.lower() == ".zip":
            archives = [root]
        elif root.is_dir():
            dirs.extend(sorted(p for p in root.iterdir() if p.is_dir() and (p / "pack.toml").exists()))
            archives = sorted(p for p in root.iterdir() if p.is_file() and p.suffix.lower() == ".zip")
        else:
            continue
        for archive in archives:
            try:
                folder = unpacked(archive, zip_cache)
            except PackError as problem:
                if problems is None:
                    raise
                problems.append(problem)
                continue
            dirs.append(folder)
            if shown_as is not None:
                shown_as[folder] = f"{archive}:{folder.name}"
    return dirs


def _each(manifest: Manifest, problems: Problems, build: Callable[[RawItem], Any]) -> dict[str, Any]:
    """Build every item; a broken one raises, or (validating) is recorded and skipped."""
    out: dict[str, Any] = {}
    for item in manifest.items:
        try:
            out[f"{manifest.pack.id}/{item.id}"] = build(item)
        except PackError as problem:
            if problems is None:
                raise
            problems.append(problem)
    return out


def _looks(manifest: Manifest, problems: Problems = None) -> dict[str, Look]:
    def build(item: RawItem) -> Look:
        preview = item.extra.get("preview")
        if preview is not None:
            _check_preview(preview, str(manifest.path), item.line)
        return Look(id=f"{manifest.pack.id}/{item.id}", title=item.title, intensity=item.default, tags=item.tags,
                    pack=manifest.pack, lut=load_lut(item.path), preview=preview)

    return _each(manifest, problems, build)


def _stickers(manifest: Manifest, problems: Problems = None) -> dict[str, StickerItem]:
    def build(item: RawItem) -> StickerItem:
        width, height, frames = _check_sticker(item.path, str(manifest.path), item.line)
        return StickerItem(f"{manifest.pack.id}/{item.id}", item.title, item.default, item.tags, manifest.pack,
                           item.path, width, height, frames, item.extra["anchor"], item.extra["safe_area"])

    return _each(manifest, problems, build)


def _tracks(manifest: Manifest, problems: Problems = None, cache: Path | None = None) -> dict[str, Track]:
    from media_service.probe import probe_audio

    where = str(manifest.path)

    def build(item: RawItem) -> Track:
        try:
            facts = probe_audio(item.path, timeout=20)
        except MediaError as exc:
            raise PackError(where, item.line, f"{item.path.name}: not a readable audio file ({exc.message})") from None
        if not MIN_TRACK_SECONDS <= facts.duration <= MAX_TRACK_SECONDS:
            raise PackError(where, item.line, f"{item.path.name}: {facts.duration:.1f} s long; tracks are "
                                              f"{MIN_TRACK_SECONDS:g}–{MAX_TRACK_SECONDS:g} s")
        loop = item.extra.get("loop")
        if loop is not None and loop[1] > facts.duration + 0.05:
            raise PackError(where, item.line, f"{item.path.name}: loop ends at {loop[1]:g} s, after the track's "
                                              f"end ({facts.duration:.2f} s)")
        digest = file_digest(item.path)
        rel = item.path.relative_to(manifest.pack.root.resolve()).as_posix()
        try:
            loudness = stored(manifest.pack.root, rel, digest) or cached_measure(
                item.path, cache or default_cache(), digest, shared=default_cache())
        except MediaError as exc:
            raise PackError(where, item.line, f"{item.path.name}: loudness could not be measured ({exc.message})") \
                from None
        if loudness.integrated < SILENT_LUFS:
            raise PackError(where, item.line, f"{item.path.name}: silent or nearly so "
                                              f"({loudness.integrated:.0f} LUFS); check the export")
        return Track(f"{manifest.pack.id}/{item.id}", item.title, item.extra["artist"], item.extra["license"],
                     item.extra["source"], item.tags, manifest.pack, item.path, facts.duration, loop, loudness)

    return _each(manifest, problems, build)


LOADERS: dict[str, Callable[[Manifest, Problems, Path | None], dict[str, Any]]] = {
    "looks": lambda m, p, _c: _looks(m, p), "stickers": lambda m, p, _c: _stickers(m, p), "tracks": _tracks}


def load_packs(pack_dirs: dict[str, list[Path]], problems: Problems = None, cache: Path | None = None) -> PackRegistry:
    """Load the given pack folders by kind ("looks", "stickers", "tracks"). The first problem raises
    PackError; with ``problems`` given, every problem is recorded there and broken items are left out.
    ``cache``: where measurements that a pack does not carry are kept (a temporary folder by default)."""
    found: dict[str, dict[str, Any]] = {kind: {} for kind in LOADERS}
    for kind, dirs in pack_dirs.items():
        target = found[kind]
        for pack_dir in dirs:
            try:
                manifest = load_manifest(pack_dir, kind, problems)
                if any(key.split("/")[0] == manifest.pack.id for key in target):
                    raise PackError(str(manifest.path), None, f"pack id {manifest.pack.id!r} is defined twice")
                target.update(LOADERS[kind](manifest, problems, cache))
            except PackError as problem:
                if problems is None:
                    raise
                problems.append(problem)
    return PackRegistry(found["looks"], found["stickers"], found["tracks"])


def load_registry(filter_roots: Iterable[Path], sticker_roots: Iterable[Path],
                  music_roots: Iterable[Path] = (), problems: Problems = None,
                  cache: Path | None = None) -> PackRegistry:
    """Every pack under the given roots (each root holds pack folders and pack .zip archives)."""
    zips = None if cache is None else cache / "local-zips"
    return load_packs({"looks": pack_folders(filter_roots, zips, problems),
                       "stickers": pack_folders(sticker_roots, zips, problems),
                       "tracks": pack_folders(music_roots, zips, problems)}, problems, cache)
