"""`media-service packs validate`: every problem of the given packs at once, each with file and line."""

from __future__ import annotations

import tomllib
from pathlib import Path

from media_service.errors import PackError
from media_service.packs.manifest import KINDS
from media_service.packs.registry import PackRegistry, load_packs, pack_folders


def kind_of(pack_dir: Path) -> str:
    """The kind a manifest declares ([[looks]], [[stickers]] or [[tracks]]); "looks" when it cannot be read,
    so that loading it reports the real problem."""
    try:
        data = tomllib.loads((pack_dir / "pack.toml").read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, tomllib.TOMLDecodeError):
        return "looks"
    return next((kind for kind in KINDS if kind in data), "looks")


def validate(paths: list[Path]) -> tuple[PackRegistry, list[PackError]]:
    problems: list[PackError] = []
    shown_as: dict[Path, str] = {}
    dirs = pack_folders(paths, None, problems, shown_as)
    missing = [p for p in paths if not p.exists()]
    problems += [PackError(str(p), None, "no such file or folder") for p in missing]
    if not dirs and not missing and not problems:
        problems.append(PackError(", ".join(map(str, paths)), None, "no pack.toml found here"))
    by_kind: dict[str, list[Path]] = {kind: [] for kind in KINDS}
    for d in dirs:
        by_kind[kind_of(d)].append(d)
    registry = load_packs(by_kind, problems)
    return registry, [_shown(p, shown_as) for p in problems]


def _shown(problem: PackError, shown_as: dict[Path, str]) -> PackError:
    """A problem inside an extracted archive, named as ``pack.zip:<pack>/<file>`` rather than a cache path."""
    for folder, name in shown_as.items():
        if Path(problem.path).is_relative_to(folder):
            return PackError(f"{name}/{Path(problem.path).relative_to(folder)}", problem.line, problem.problem)
    return problem
