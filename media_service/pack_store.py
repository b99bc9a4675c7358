"""Published packs: versioned archives in storage, an index that says which version is current, and a
registry that follows the index without a restart.

Layout in storage::

    packs/<kind>/<pack id>/<version>.zip     the archive as built, immutable once published
    packs/index.json                          {"<kind>": {"<pack id>": {"current": "1.1.0",
                                                                         "versions": ["1.0.0", "1.1.0"]}}}

The index is written last, in one put, so a reader sees either the old or the new version, never half.
Only an archive that passes validation is published; a registry refresh that meets a broken archive keeps
the previous registry.
"""

from __future__ import annotations

import json
import logging
import shutil
import tempfile
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from media_service.errors import MediaError, PackError, StorageObjectMissing
from media_service.packs.archive import extract_or_clean
from media_service.packs.manifest import KINDS
from media_service.packs.registry import Look, PackRegistry, StickerItem, Track, load_packs, pack_folders
from media_service.packs.validate import kind_of
from media_service.storage import Storage

log = logging.getLogger("media_service.packs")
INDEX_KEY = "packs/index.json"


class PackRejected(MediaError):
    code = "pack_invalid"
    http_status = 422
    default_message = "The pack failed validation."

    def __init__(self, problems: list[PackError]) -> None:
        self.problems = problems
        super().__init__(f"{len(problems)} problem(s): " + "; ".join(str(p) for p in problems[:5]))


def zip_key(kind: str, pack_id: str, version: str) -> str:
    return f"packs/{kind}/{pack_id}/{version}.zip"


def _version_key(version: str) -> tuple[int, ...]:
    core = version.split("-")[0].split("+")[0]
    return tuple(int(x) for x in core.split(".") if x.isdigit())


@dataclass(frozen=True)
class Published:
    kind: str
    pack_id: str
    version: str


class PackStore:
    def __init__(self, storage: Storage) -> None:
        self.storage = storage

    def read_index(self) -> dict[str, dict[str, dict[str, Any]]]:
        try:
            raw = b"".join(self.storage.iter_bytes(INDEX_KEY))
        except StorageObjectMissing:
            return {}
        data: dict[str, dict[str, dict[str, Any]]] = json.loads(raw or b"{}")
        return data

    def _write_index(self, index: dict[str, dict[str, dict[str, Any]]]) -> None:
        with tempfile.NamedTemporaryFile("wb", suffix=".json") as f:
            f.write(json.dumps(index, indent=1, sort_keys=True).encode())
            f.flush()
            self.storage.put_file(INDEX_KEY, Path(f.name), "application/json")

    def publish(self, archive: Path) -> Published:
        """Validate the archive as the service would load it, store it under its version, make it current."""
        with tempfile.TemporaryDirectory(prefix="pack-publish-") as tmp:
            root = extract_or_clean(archive, Path(tmp) / "x")
            kind = kind_of(root)
            problems: list[PackError] = []
            registry = load_packs({kind: [root]}, problems)
            if problems:
                raise PackRejected(problems)
            items: list[Look | StickerItem | Track] = [*registry.looks.values(), *registry.stickers.values(),
                                                       *registry.tracks.values()]
            pack = items[0].pack
        key = zip_key(kind, pack.id, pack.version)
        index = self.read_index()
        entry = index.setdefault(kind, {}).setdefault(pack.id, {"current": None, "versions": []})
        if pack.version in entry["versions"]:
            existing = self.storage.stat(key)
            if existing is None or existing.size != archive.stat().st_size:
                raise PackRejected([PackError(str(archive), None, f"{pack.id} {pack.version} is already published "
                                                                  "with other content; raise the version")])
        else:
            self.storage.put_file(key, archive, "application/zip")
            entry["versions"] = sorted({*entry["versions"], pack.version}, key=_version_key)
        entry["current"] = pack.version
        self._write_index(index)
        return Published(kind, pack.id, pack.version)

    def rollback(self, pack_id: str, version: str) -> Published:
        index = self.read_index()
        for kind, packs in index.items():
            entry = packs.get(pack_id)
            if entry is not None:
                if version not in entry["versions"]:
                    raise PackRejected([PackError(pack_id, None, f"no published version {version!r} "
                                                                 f"(there are: {', '.join(entry['versions'])})")])
                entry["current"] = version
                self._write_index(index)
                return Published(kind, pack_id, version)
        raise PackRejected([PackError(pack_id, None, "no published pack with this id")])

    def fetch(self, kind: str, pack_id: str, version: str, cache: Path) -> Path:
        """The extracted pack folder in the local cache (downloaded and extracted once per version)."""
        target = cache / kind / pack_id / version
        done = target / ".ok"
        if not done.exists():
            shutil.rmtree(target, ignore_errors=True)
            target.mkdir(parents=True)
            archive = target.with_suffix(".zip.part")
            try:
                self.storage.get_to_file(zip_key(kind, pack_id, version), archive)
                extract_or_clean(archive, target / "x")
            finally:
                archive.unlink(missing_ok=True)
            done.touch()
        return next(p for p in (target / "x").iterdir() if p.is_dir())


class LiveRegistry:
    """Local pack folders plus the published packs, refreshed at most every ``refresh_seconds``.

    ``current()`` is cheap: it returns the registry in hand and, when it is older than the interval, looks
    at the index (one small read) and rebuilds only if the index changed. A published pack with the same id
    as a local one replaces it. A rebuild that fails keeps the previous registry.
    """

    def __init__(self, local_roots: dict[str, Iterable[Path]], store: PackStore | None, cache: Path,
                 refresh_seconds: float = 30.0, clock: Callable[[], float] = time.monotonic) -> None:
        self.local = {kind: list(roots) for kind, roots in local_roots.items()}
        self.store = store
        self.cache = cache
        self.refresh_seconds = refresh_seconds
        self.clock = clock
        self._lock = threading.Lock()
        self._index: dict[str, Any] | None = None
        self._registry = self._build({})
        self._checked = clock()

    def _build(self, index: dict[str, Any]) -> PackRegistry:
        dirs: dict[str, list[Path]] = {kind: pack_folders(self.local.get(kind, []), self.cache / "local-zips")
                                       for kind in KINDS}
        for kind, packs in index.items():
            if kind not in dirs or self.store is None:
                continue
            for pack_id, entry in sorted(packs.items()):
                if not entry.get("current"):
                    continue
                folder = self.store.fetch(kind, pack_id, entry["current"], self.cache)
                dirs[kind] = [d for d in dirs[kind] if d.name != pack_id] + [folder]
        return load_packs(dirs, cache=self.cache)

    def refresh(self) -> bool:
        """Look at the index now; returns whether the registry changed."""
        if self.store is None:
            return False
        index = self.store.read_index()
        if index == self._index:
            return False
        registry = self._build(index)
        self._registry, self._index = registry, index
        log.info("packs refreshed: %d looks, %d stickers, %d tracks", len(registry.looks), len(registry.stickers),
                 len(registry.tracks))
        return True

    def current(self) -> PackRegistry:
        if self.store is not None and self.clock() - self._checked >= self.refresh_seconds \
                and self._lock.acquire(blocking=False):
            try:
                self._checked = self.clock()
                self.refresh()
            except (MediaError, OSError, ValueError) as exc:
                log.warning("packs: keeping the previous registry: %s", exc)
            finally:
                self._lock.release()
        return self._registry
