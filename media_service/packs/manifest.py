"""pack.toml: parsed strictly, every problem reported with the file and (where it can be found) the line."""

from __future__ import annotations

import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media_service.errors import PackError
from media_service.geometry import CENTRE, Margins

ID_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,39}$")
SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")

PACK_KEYS = {"id", "version", "title", "author", "license", "description"}
LOOK_KEYS = {"id", "title", "lut", "intensity", "preview", "tags"}
STICKER_KEYS = {"id", "title", "file", "scale", "anchor", "safe_area", "tags"}
TRACK_KEYS = {"id", "title", "file", "artist", "license", "source", "loop", "tags"}
# Named anchors: the sticker's point (fractions of its width and height) that lands on the recipe's x, y.
ANCHORS = {"center": CENTRE, "top": (0.5, 0.0), "bottom": (0.5, 1.0), "left": (0.0, 0.5), "right": (1.0, 0.5),
           "top-left": (0.0, 0.0), "top-right": (1.0, 0.0), "bottom-left": (0.0, 1.0), "bottom-right": (1.0, 1.0)}
SAFE_AREA_KEYS = ("left", "top", "right", "bottom")
KINDS = {"looks": (LOOK_KEYS, "lut"), "stickers": (STICKER_KEYS, "file"), "tracks": (TRACK_KEYS, "file")}


@dataclass(frozen=True)
class Title:
    en: str
    zh: str

    def as_dict(self) -> dict[str, str]:
        return {"en": self.en, "zh": self.zh}


@dataclass(frozen=True)
class PackInfo:
    id: str
    version: str
    title: Title
    author: str
    license: str
    description: str
    root: Path


@dataclass(frozen=True)
class RawItem:
    """One [[looks]] or [[stickers]] table, checked for shape; its files are checked by the registry."""

    id: str
    title: Title
    path: Path
    default: float  # intensity for looks, scale for stickers
    tags: tuple[str, ...]
    line: int | None
    extra: dict[str, Any] = field(default_factory=dict)  # tracks: artist, license, source, loop


@dataclass(frozen=True)
class Manifest:
    pack: PackInfo
    kind: str  # "looks", "stickers" or "tracks"
    items: tuple[RawItem, ...]
    path: Path


class _Lines:
    """Finds the line of a table or key so that semantic errors can name it (tomllib gives no positions)."""

    def __init__(self, text: str) -> None:
        self.lines = text.splitlines()

    def of_array_item(self, table: str, index: int) -> int | None:
        seen = -1
        for no, line in enumerate(self.lines, start=1):
            if line.strip().replace(" ", "") == f"[[{table}]]":
                seen += 1
                if seen == index:
                    return no
        return None

    def of_key(self, key: str, after: int | None = None) -> int | None:
        """The line of ``key`` in the table that starts at line ``after`` (or in the top-level/[pack] part
        when None); that table's first line when the key is not in it."""
        pattern = re.compile(rf"^\s*{re.escape(key)}\s*=")
        start = after or 0
        for no, line in enumerate(self.lines, start=1):
            if no <= start:
                continue
            if line.lstrip().startswith("[") and (after is not None or not line.strip().startswith("[pack]")):
                break  # the next table begins: the key is not in this one
            if pattern.match(line):
                return no
        return after

    def of_table(self, name: str) -> int | None:
        for no, line in enumerate(self.lines, start=1):
            if line.strip().replace(" ", "") == f"[{name}]":
                return no
        return None


def _title(value: Any, where: str, path: str, line: int | None) -> Title:
    if not isinstance(value, dict) or set(value) != {"en", "zh"}:
        raise PackError(path, line, f"{where}.title must be a table with exactly 'en' and 'zh', like "
                                    '{ en = "Warm", zh = "暖阳" }')
    en, zh = value["en"], value["zh"]
    if not (isinstance(en, str) and isinstance(zh, str) and en.strip() and zh.strip()):
        raise PackError(path, line, f"{where}.title: 'en' and 'zh' must be non-empty strings")
    return Title(en.strip(), zh.strip())


def _str(table: dict[str, Any], key: str, where: str, path: str, line: int | None) -> str:
    value = table.get(key)
    if not isinstance(value, str) or not value.strip():
        raise PackError(path, line, f"{where}.{key} is required and must be a non-empty string")
    return value.strip()


def _number(table: dict[str, Any], key: str, where: str, lo: float, hi: float, path: str,
            line: int | None, default: float | None = None) -> float:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise PackError(path, line, f"{where}.{key} must be a number between {lo} and {hi}")
    if not lo <= float(value) <= hi:
        raise PackError(path, line, f"{where}.{key} = {value} is outside {lo}..{hi}")
    return float(value)


def _anchor(value: Any, where: str, path: str, line: int | None) -> tuple[float, float]:
    if isinstance(value, str) and value in ANCHORS:
        return ANCHORS[value]
    if (isinstance(value, list) and len(value) == 2
            and all(isinstance(v, int | float) and not isinstance(v, bool) and 0.0 <= v <= 1.0 for v in value)):
        return float(value[0]), float(value[1])
    raise PackError(path, line, f"{where}.anchor must be one of {', '.join(ANCHORS)} or [x, y] with both in "
                                "0..1 (fractions of the sticker's width and height, [0.5, 1.0] = bottom centre)")


def _safe_area(value: Any, where: str, path: str, line: int | None) -> Margins | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not value or not set(value) <= set(SAFE_AREA_KEYS):
        raise PackError(path, line, f"{where}.safe_area must be a table of margins, fractions of the frame, like "
                                    "{ top = 0.1, bottom = 0.15 } (keys: left, top, right, bottom)")
    margins = {k: _number(value, k, f"{where}.safe_area", 0.0, 0.45, path, line, default=0.0) for k in SAFE_AREA_KEYS}
    return Margins(**margins)


def _asset(root: Path, rel: str, path: str, line: int | None) -> Path:
    candidate = Path(rel)
    if candidate.is_absolute() or ".." in candidate.parts:
        raise PackError(path, line, f"{rel!r} must be a relative path inside the pack folder")
    full = (root / candidate).resolve()
    if not full.is_relative_to(root.resolve()):
        raise PackError(path, line, f"{rel!r} points outside the pack folder")
    if not full.is_file():
        raise PackError(path, line, f"{rel!r} does not exist in the pack folder")
    return full


def load_manifest(pack_dir: Path, expected_kind: str, problems: list[PackError] | None = None) -> Manifest:
    """Parse and check a manifest. Pack-level problems raise; with ``problems`` given, a broken item is
    recorded there and skipped so that every problem is found in one go (``media-service packs validate``)."""
    manifest_path = pack_dir / "pack.toml"
    path = str(manifest_path)
    try:
        text = manifest_path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise PackError(path, None, "missing pack.toml") from None
    except UnicodeDecodeError as exc:
        raise PackError(path, None, f"pack.toml is not UTF-8 text (byte {exc.start}); save it as UTF-8") from None
    except OSError as exc:
        raise PackError(path, None, f"pack.toml cannot be read ({exc.strerror})") from None
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        match = re.search(r"line (\d+)", str(exc))
        raise PackError(path, int(match.group(1)) if match else None, f"TOML syntax: {exc}") from None
    lines = _Lines(text)

    unknown_top = set(data) - {"pack", *KINDS}
    if unknown_top:
        name = sorted(unknown_top)[0]
        line = lines.of_key(name) or lines.of_table(name) or lines.of_array_item(name, 0)
        raise PackError(path, line, f"unknown top-level key {name!r}")
    pack = data.get("pack")
    pack_line = lines.of_key("id")
    if not isinstance(pack, dict):
        raise PackError(path, None, "missing [pack] table")
    unknown_pack_keys = set(pack) - PACK_KEYS
    if unknown_pack_keys:
        key = sorted(unknown_pack_keys)[0]
        raise PackError(path, lines.of_key(key), f"unknown key {key!r} in [pack]")
    pack_id = _str(pack, "id", "pack", path, pack_line)
    if not ID_RE.match(pack_id):
        raise PackError(path, pack_line, f"pack.id {pack_id!r}: use 1–40 of a-z, 0-9, '-', '_'")
    if pack_id != pack_dir.name:
        raise PackError(path, pack_line, f"pack.id {pack_id!r} must match its folder name {pack_dir.name!r}")
    version = _str(pack, "version", "pack", path, lines.of_key("version"))
    if not SEMVER_RE.match(version):
        raise PackError(path, lines.of_key("version"), f"pack.version {version!r} is not semver (like 1.2.0)")
    info = PackInfo(
        id=pack_id,
        version=version,
        title=_title(pack.get("title"), "pack", path, lines.of_key("title")),
        author=_str(pack, "author", "pack", path, lines.of_key("author")),
        license=_str(pack, "license", "pack", path, lines.of_key("license")),
        description=str(pack.get("description", "")),
        root=pack_dir,
    )

    for other_kind in KINDS:
        if other_kind != expected_kind and other_kind in data:
            raise PackError(path, lines.of_array_item(other_kind, 0),
                            f"a {expected_kind} pack cannot hold [[{other_kind}]]")
    tables = data.get(expected_kind)
    if not isinstance(tables, list) or not tables:
        raise PackError(path, None, f"a {expected_kind} pack needs at least one [[{expected_kind}]] table")

    allowed, file_key = KINDS[expected_kind]
    items: list[RawItem] = []
    seen: dict[str, int | None] = {}
    for index, table in enumerate(tables):
        try:
            line = lines.of_array_item(expected_kind, index)
            where = f"{expected_kind}[{index}]"
            if not isinstance(table, dict):
                raise PackError(path, line, f"{where} must be a table ([[{expected_kind}]])")
            unknown = set(table) - allowed
            if unknown:
                key = sorted(unknown)[0]
                raise PackError(path, lines.of_key(key, line), f"unknown key {key!r} in {where}")
            item_id = _str(table, "id", where, path, line)
            if not ID_RE.match(item_id):
                raise PackError(path, line, f"{where}.id {item_id!r}: use 1–40 of a-z, 0-9, '-', '_'")
            if item_id in seen:
                raise PackError(path, line, f"duplicate id {item_id!r} (first at line {seen[item_id]})")
            seen[item_id] = line
            tags = table.get("tags", [])
            if not isinstance(tags, list) or not all(isinstance(t, str) for t in tags):
                raise PackError(path, line, f"{where}.tags must be a list of strings")
            extra: dict[str, Any] = {}
            if expected_kind == "looks":
                default = _number(table, "intensity", where, 0.0, 1.0, path, line, default=1.0)
                if "preview" in table:
                    preview_line = lines.of_key("preview", line)
                    extra = {"preview": _asset(pack_dir, _str(table, "preview", where, path, preview_line), path,
                                               preview_line)}
            elif expected_kind == "stickers":
                default = _number(table, "scale", where, 0.01, 1.0, path, line, default=0.25)
                extra = {"anchor": _anchor(table.get("anchor", "center"), where, path, lines.of_key("anchor", line)),
                         "safe_area": _safe_area(table.get("safe_area"), where, path,
                                                 lines.of_key("safe_area", line))}
            else:
                default = 0.0
                extra = {key: _str(table, key, where, path, lines.of_key(key, line) or line)
                         for key in ("artist", "license", "source")}
                loop = table.get("loop")
                if loop is not None:
                    if not isinstance(loop, dict) or set(loop) != {"start", "end"}:
                        raise PackError(path, lines.of_key("loop", line),
                                        f"{where}.loop must be {{ start = …, end = … }}")
                    start = _number(loop, "start", f"{where}.loop", 0.0, 3600.0, path, line)
                    end = _number(loop, "end", f"{where}.loop", 0.0, 3600.0, path, line)
                    if end - start < 1.0:
                        raise PackError(path, lines.of_key("loop", line), f"{where}.loop must be at least 1 s long")
                    extra["loop"] = (start, end)
            items.append(RawItem(
                id=item_id,
                title=_title(table.get("title"), where, path, line),
                path=_asset(pack_dir, _str(table, file_key, where, path, line), path, line),
                default=default,
                tags=tuple(tags),
                line=line,
                extra=extra,
            ))
        except PackError as problem:
            if problems is None:
                raise
            problems.append(problem)

    return Manifest(info, expected_kind, tuple(items), manifest_path)
