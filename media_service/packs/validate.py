"""`media-service packs validate`: every problem of the given packs at once, each with file and line."""

from __future__ import annotations

import re
import tomllib
from pathlib import Path

from media_service.errors import MediaError, PackError
from media_service.packs.manifest import KINDS
from media_service.packs.registry import PackRegistry, load_packs

SILENT_LUFS = -50.0


def pack_dirs(paths: list[Path]) -> list[Path]:
    """A path is a pack folder (it has pack.toml) or a folder of packs (like filters/)."""
    out: list[Path] = []
    for path in paths:
        if (path / "pack.toml").is_file():
            out.append(path)
        elif path.is_dir():
            out.extend(sorted(p for p in path.iterdir() if (p / "pack.toml").is_file()))
    return out


def kind_of(pack_dir: Path) -> str:
    """The kind a manifest declares ([[looks]], [[stickers]] or [[tracks]]); "looks" when it cannot be read,
    so that loading it reports the real problem."""
    try:
        data = tomllib.loads((pack_dir / "pack.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "looks"
    return next((kind for kind in KINDS if kind in data), "looks")


def _track_loudness(path: Path) -> float | None:
    from media_service.ffmpeg.runner import run_tool
    from media_service.ffmpeg.safety import AUDIO_DEMUXERS, input_args

    result = run_tool(["ffmpeg", "-nostdin", "-hide_banner", "-nostats", *input_args(AUDIO_DEMUXERS), "-i", str(path),
                       "-af", "ebur128", "-f", "null", "-"], timeout=120)
    match = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", result.stderr[result.stderr.rfind("Summary:"):])
    return float(match.group(1)) if match and match.group(1) != "-inf" else None


def validate(paths: list[Path]) -> tuple[PackRegistry, list[PackError]]:
    dirs = pack_dirs(paths)
    problems: list[PackError] = []
    missing = [p for p in paths if not p.exists()]
    problems += [PackError(str(p), None, "no such file or folder") for p in missing]
    if not dirs and not missing:
        problems.append(PackError(", ".join(map(str, paths)), None, "no pack.toml found here"))
    by_kind: dict[str, list[Path]] = {kind: [] for kind in KINDS}
    for d in dirs:
        by_kind[kind_of(d)].append(d)
    registry = load_packs(by_kind, problems)
    for track in registry.tracks.values():
        try:
            lufs = _track_loudness(track.path)
        except MediaError as exc:
            problems.append(PackError(str(track.pack.root / "pack.toml"), None, f"{track.path.name}: {exc.message}"))
            continue
        if lufs is None or lufs < SILENT_LUFS:
            problems.append(PackError(str(track.pack.root / "pack.toml"), None,
                                      f"{track.path.name}: silent or nearly so ({lufs} LUFS); check the export"))
    return registry, problems
