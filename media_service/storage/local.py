"""Objects as files under a root directory (development, single-host deployments, tests)."""

from __future__ import annotations

import contextlib
import errno
import hashlib
import io
import json
import mimetypes
import os
import stat as stat_mod
import tempfile
import time
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

from media_service.errors import NotSupported, StorageObjectMissing, StorageUnavailable
from media_service.storage.base import StoredObject
from media_service.storage.signing import (
    MAX_URL_EXPIRES_IN,
    signed_url,
    validate_key,
    validate_prefix,
)

_COPY_CHUNK = 1 << 20
_DEFAULT_CONTENT_TYPE = "application/octet-stream"
_META_SUFFIX = ".meta.json"
# Objects are served by the web process, which may run as another user than the worker.
_FILE_MODE = 0o644
# A concurrent delete may prune a directory between our mkdir and creating the temp file in it.
_MKDIR_ATTEMPTS = 5


@contextlib.contextmanager
def _storage_errors(action: str, key: str) -> Iterator[None]:
    try:
        yield
    except OSError as exc:
        raise StorageUnavailable(detail=f"local storage: {action} {key!r} failed: {exc}") from exc


def _meta_path(path: Path) -> Path:
    return path.with_name(f".{path.name}{_META_SUFFIX}")


def _fsync_dir(directory: Path) -> None:
    fd = os.open(directory, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _iter_open_file(handle: BinaryIO, chunk_size: int, key: str) -> Iterator[bytes]:
    with handle, _storage_errors("read", key):
        while chunk := handle.read(chunk_size):
            yield chunk


class LocalStorage:
    """Files under ``root``; metadata in a hidden sidecar ``.<name>.meta.json`` next to each object.

    Writes go to a hidden temp file in the object's directory, are fsynced and then renamed over the
    object, so readers see either the old or the new object, never a partial one.

    Unlike S3, a key cannot be both an object and a prefix of other keys (``a`` and ``a/b``): such a
    put raises ValueError. The service's key layout never does this.
    """

    def __init__(self, root: Path, *, public_base_url: str, signing_secret: bytes) -> None:
        if not root.is_absolute():
            raise ValueError(f"local storage root must be an absolute path, got {str(root)!r}")
        if not signing_secret:
            raise ValueError("local storage needs a non-empty signing secret for download URLs")
        if not public_base_url.startswith(("http://", "https://")):
            raise ValueError(f"public_base_url must be an http(s) URL, got {public_base_url!r}")
        self.root = root.resolve()
        self.public_base_url = public_base_url.rstrip("/")
        self._secret = signing_secret

    def __repr__(self) -> str:
        return f"LocalStorage(root={str(self.root)!r})"

    # --- paths ------------------------------------------------------------------------------------------

    def _path(self, key: str) -> Path:
        validate_key(key)
        path = self.root / key
        # Keys are already free of '..'; resolving also catches symlinks inside root that point out of it.
        if not path.resolve().is_relative_to(self.root):
            raise ValueError(f"storage key {key!r} resolves outside the storage root")
        return path

    def _key_of(self, path: Path) -> str:
        return path.relative_to(self.root).as_posix()

    # --- writing ----------------------------------------------------------------------------------------

    def _create_temp(self, path: Path, key: str) -> tuple[int, Path]:
        for _ in range(_MKDIR_ATTEMPTS):
            try:
                path.parent.mkdir(parents=True, exist_ok=True)
                fd, name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
                return fd, Path(name)
            except FileNotFoundError:
                continue
            except (FileExistsError, NotADirectoryError) as exc:
                raise ValueError(
                    f"storage key {key!r} lies under an existing object; a key cannot also be a prefix"
                ) from exc
            except OSError as exc:
                raise StorageUnavailable(detail=f"local storage: create {key!r} failed: {exc}") from exc
        raise StorageUnavailable(detail=f"local storage: {path.parent} kept disappearing while writing")

    def _write_atomic(self, path: Path, stream: BinaryIO, key: str) -> tuple[int, str]:
        """Copy ``stream`` to ``path`` atomically; return its size and sha256."""
        fd, tmp = self._create_temp(path, key)
        digest = hashlib.sha256()
        size = 0
        committed = False
        try:
            with os.fdopen(fd, "wb") as out:
                # The caller's stream errors propagate as they are; only our own I/O means "unavailable".
                while chunk := stream.read(_COPY_CHUNK):
                    digest.update(chunk)
                    size += len(chunk)
                    with _storage_errors("write", key):
                        out.write(chunk)
                with _storage_errors("write", key):
                    out.flush()
                    os.fchmod(out.fileno(), _FILE_MODE)
                    os.fsync(out.fileno())
            try:
                os.replace(tmp, path)
            except IsADirectoryError as exc:
                raise ValueError(
                    f"storage key {key!r} is a prefix of other keys; a key cannot also be a prefix"
                ) from exc
            except OSError as exc:
                if exc.errno in (errno.EISDIR, errno.ENOTEMPTY, errno.EEXIST):
                    raise ValueError(f"storage key {key!r} is a prefix of other keys") from exc
                raise StorageUnavailable(detail=f"local storage: rename {key!r} failed: {exc}") from exc
            committed = True
        finally:
            if not committed:
                with contextlib.suppress(OSError):
                    tmp.unlink()
        return size, digest.hexdigest()

    def _write_meta(self, path: Path, key: str, meta: dict[str, Any]) -> None:
        target = _meta_path(path)
        fd, tmp = self._create_temp(target, key)
        try:
            with os.fdopen(fd, "w", encoding="utf-8") as out, _storage_errors("write metadata of", key):
                json.dump(meta, out)
                out.flush()
                os.fchmod(out.fileno(), _FILE_MODE)
                os.fsync(out.fileno())
            with _storage_errors("write metadata of", key):
                os.replace(tmp, target)
        except BaseException:
            with contextlib.suppress(OSError):
                tmp.unlink()
            raise

    def _put(self, key: str, stream: BinaryIO, content_type: str) -> StoredObject:
        path = self._path(key)
        if not content_type:
            raise ValueError("content_type must not be empty")
        # Data is renamed into place before its sidecar: if we crash in between, the object is whole and
        # stat() notices the stale sidecar by its size and falls back to a guessed content type.
        size, sha256 = self._write_atomic(path, stream, key)
        self._write_meta(path, key, {"content_type": content_type, "sha256": sha256, "size": size})
        with _storage_errors("sync directory of", key):
            _fsync_dir(path.parent)
        return StoredObject(key=key, size=size, content_type=content_type, sha256=sha256)

    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject:
        self._path(key)
        with open(path, "rb") as source:
            return self._put(key, source, content_type)

    def put_stream(self, key: str, stream: BinaryIO, content_type: str) -> StoredObject:
        return self._put(key, stream, content_type)

    # --- reading ----------------------------------------------------------------------------------------

    def _open(self, key: str) -> BinaryIO:
        path = self._path(key)
        try:
            return open(path, "rb")
        except (FileNotFoundError, IsADirectoryError, NotADirectoryError) as exc:
            raise StorageObjectMissing(detail=f"local storage: no object {key!r}") from exc
        except OSError as exc:
            raise StorageUnavailable(detail=f"local storage: open {key!r} failed: {exc}") from exc

    def get_to_file(self, key: str, dest: Path) -> None:
        with self._open(key) as source:
            fd, tmp_name = tempfile.mkstemp(dir=dest.parent, prefix=f".{dest.name}.", suffix=".part")
            tmp = Path(tmp_name)
            try:
                with os.fdopen(fd, "wb") as out:
                    while True:
                        with _storage_errors("read", key):
                            chunk = source.read(_COPY_CHUNK)
                        if not chunk:
                            break
                        out.write(chunk)
                os.replace(tmp, dest)
            except BaseException:
                with contextlib.suppress(OSError):
                    tmp.unlink()
                raise

    def iter_bytes(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        if chunk_size <= 0:
            raise ValueError("chunk_size must be positive")
        # Opened before returning, so a missing object raises here and not at the first next().
        return _iter_open_file(self._open(key), chunk_size, key)

    def _read_meta(self, path: Path) -> dict[str, Any] | None:
        try:
            with open(_meta_path(path), encoding="utf-8") as handle:
                meta = json.load(handle)
        except (OSError, ValueError):
            return None
        return meta if isinstance(meta, dict) else None

    def stat(self, key: str) -> StoredObject | None:
        path = self._path(key)
        try:
            info = os.stat(path)
        except (FileNotFoundError, NotADirectoryError):
            return None
        except OSError as exc:
            raise StorageUnavailable(detail=f"local storage: stat {key!r} failed: {exc}") from exc
        if not stat_mod.S_ISREG(info.st_mode):
            return None
        meta = self._read_meta(path)
        if (
            meta is not None
            and meta.get("size") == info.st_size
            and isinstance(meta.get("content_type"), str)
        ):
            sha256 = meta.get("sha256")
            return StoredObject(
                key=key,
                size=info.st_size,
                content_type=meta["content_type"],
                sha256=sha256 if isinstance(sha256, str) else None,
            )
        guessed, _ = mimetypes.guess_type(path.name)
        return StoredObject(key=key, size=info.st_size, content_type=guessed or _DEFAULT_CONTENT_TYPE)

    # --- deleting ---------------------------------------------------------------------------------------

    def _prune_empty_dirs(self, directory: Path) -> None:
        while directory != self.root and directory.is_relative_to(self.root):
            try:
                directory.rmdir()
            except OSError:
                return
            directory = directory.parent

    def _delete_path(self, path: Path, key: str) -> bool:
        removed = False
        with _storage_errors("delete", key):
            try:
                path.unlink()
                removed = True
            except (FileNotFoundError, NotADirectoryError, IsADirectoryError):
                pass
            except PermissionError:
                if not path.is_dir():
                    raise
            _meta_path(path).unlink(missing_ok=True)
        self._prune_empty_dirs(path.parent)
        return removed

    def delete(self, key: str) -> None:
        self._delete_path(self._path(key), key)

    def delete_prefix(self, prefix: str) -> int:
        validate_prefix(prefix, allow_empty=False)
        deleted = 0
        for key in self.list_keys(prefix):
            if self._delete_path(self.root / key, key):
                deleted += 1
        self._remove_leftovers(prefix)
        return deleted

    def _remove_leftovers(self, prefix: str) -> None:
        """Remove orphaned sidecars and empty directories under ``prefix`` (after a crash, say)."""
        for top in self._matching_dirs(prefix):
            for dirpath, _dirnames, filenames in os.walk(top, topdown=False):
                directory = Path(dirpath)
                for name in filenames:
                    if name.startswith(".") and name.endswith(_META_SUFFIX):
                        data = directory / name[1 : -len(_META_SUFFIX)]
                        if not data.exists():
                            with contextlib.suppress(OSError):
                                (directory / name).unlink()
                with contextlib.suppress(OSError):
                    directory.rmdir()
            self._prune_empty_dirs(top.parent)

    # --- listing ----------------------------------------------------------------------------------------

    def _matching_entries(self, prefix: str) -> Iterator[os.DirEntry[str]]:
        """Entries of the prefix's directory whose names start with the prefix's last segment."""
        dir_part, _, name_part = prefix.rpartition("/")
        base = self.root / dir_part if dir_part else self.root
        if not base.resolve().is_relative_to(self.root):
            raise ValueError(f"storage prefix {prefix!r} resolves outside the storage root")
        try:
            entries = list(os.scandir(base))
        except (FileNotFoundError, NotADirectoryError):
            return
        except OSError as exc:
            raise StorageUnavailable(detail=f"local storage: list {prefix!r} failed: {exc}") from exc
        for entry in entries:
            if not entry.name.startswith(".") and entry.name.startswith(name_part):
                yield entry

    def _matching_dirs(self, prefix: str) -> list[Path]:
        return [Path(e.path) for e in self._matching_entries(prefix) if e.is_dir(follow_symlinks=False)]

    def list_keys(self, prefix: str) -> list[str]:
        validate_prefix(prefix, allow_empty=True)
        keys: list[str] = []
        for entry in self._matching_entries(prefix):
            if entry.is_file(follow_symlinks=False):
                keys.append(self._key_of(Path(entry.path)))
            elif entry.is_dir(follow_symlinks=False):
                for dirpath, dirnames, filenames in os.walk(entry.path):
                    dirnames[:] = [d for d in dirnames if not d.startswith(".")]
                    keys.extend(
                        self._key_of(Path(dirpath) / name) for name in filenames if not name.startswith(".")
                    )
        return sorted(k for k in keys if _is_valid_key(k))

    # --- URLs and health --------------------------------------------------------------------------------

    def url(self, key: str, *, expires_in: int, content_type: str | None = None) -> str:
        # content_type is not part of the URL: the signature does not cover it, and the file route serves
        # the stored content type, so a client cannot make us serve an object as, say, text/html.
        validate_key(key)
        if not 0 < expires_in <= MAX_URL_EXPIRES_IN:
            raise ValueError(f"expires_in must be between 1 and {MAX_URL_EXPIRES_IN} seconds")
        return signed_url(self.public_base_url, self._secret, key, int(time.time()) + expires_in)

    def check(self) -> None:
        probe = self.root / f".probe-{uuid.uuid4().hex}"
        payload = os.urandom(32)
        try:
            with _storage_errors("create root", "."):
                self.root.mkdir(parents=True, exist_ok=True)
            self._write_atomic(probe, io.BytesIO(payload), probe.name)
            with _storage_errors("read probe", probe.name), open(probe, "rb") as handle:
                echoed = handle.read()
            if echoed != payload:
                raise StorageUnavailable(detail=f"local storage: probe in {self.root} read back differently")
            with _storage_errors("delete probe", probe.name):
                probe.unlink()
        except ValueError as exc:
            raise StorageUnavailable(detail=f"local storage: {exc}") from exc
        finally:
            with contextlib.suppress(OSError):
                probe.unlink(missing_ok=True)


    # --- direct (multipart) uploads: S3 only ------------------------------------------------------------

    def _no_direct(self) -> NotSupported:
        return NotSupported("Direct uploads need S3 storage; this deployment stores files on local disk. "
                            "Use POST /v1/media or the resumable uploads under /v1/uploads.")

    def check_multipart(self) -> None:
        raise self._no_direct()

    def create_multipart(self, key: str, content_type: str) -> str:
        raise self._no_direct()

    def presign_part(self, key: str, upload_id: str, part_number: int, *, expires_in: int) -> str:
        raise self._no_direct()

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        raise self._no_direct()

    def abort_multipart(self, key: str, upload_id: str) -> None:
        raise self._no_direct()

    def read_range(self, key: str, start: int, length: int) -> bytes:
        raise self._no_direct()

    def copy(self, src_key: str, dst_key: str, content_type: str, sha256: str) -> StoredObject:
        raise self._no_direct()

def _is_valid_key(key: str) -> bool:
    try:
        validate_key(key)
    except ValueError:
        return False
    return True
