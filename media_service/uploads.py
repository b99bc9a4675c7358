"""Resumable (tus 1.0) uploads in progress: their bytes and a small JSON state file on local disk.

Layout under ``root`` (``<data_dir>/uploads``): ``<id>.bin`` holds the bytes received so far (its size is
the upload's offset, so nothing can disagree with it), ``<id>.json`` the owner, declared length, metadata,
expiry and, once accepted, the media id; ``<id>.lock`` serialises PATCHes to one upload (``flock``, so it
works across API processes that share this directory). Partial uploads are local to the API host: several
API processes need sticky routing by upload id or a shared volume for this directory.
"""

from __future__ import annotations

import contextlib
import fcntl
import json
import os
import re
import time
import uuid
from collections.abc import Iterator
from dataclasses import asdict, dataclass, field
from pathlib import Path

from media_service.errors import Conflict

_ID = re.compile(r"[0-9a-f]{32}")


@dataclass
class TusUpload:
    id: str
    owner: str
    length: int
    metadata: dict[str, str]
    created: float
    expires: float
    media_id: str | None = None
    offset: int = field(default=0, compare=False)

    @property
    def complete(self) -> bool:
        return self.offset >= self.length


class TusStore:
    def __init__(self, root: Path, ttl_seconds: float) -> None:
        self.root = root
        self.ttl = ttl_seconds

    # --- paths ------------------------------------------------------------------------------------------

    def data_path(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.bin"

    def _info_path(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.json"

    def _lock_path(self, upload_id: str) -> Path:
        return self.root / f"{upload_id}.lock"

    # --- state ------------------------------------------------------------------------------------------

    def create(self, owner: str, length: int, metadata: dict[str, str], now: float | None = None) -> TusUpload:
        now = time.time() if now is None else now
        self.root.mkdir(parents=True, exist_ok=True)
        upload = TusUpload(uuid.uuid4().hex, owner, length, metadata, now, now + self.ttl)
        self.data_path(upload.id).touch(exist_ok=False)
        self.save(upload)
        return upload

    def get(self, upload_id: str) -> TusUpload | None:
        if not _ID.fullmatch(upload_id):
            return None
        try:
            raw = json.loads(self._info_path(upload_id).read_text())
        except (OSError, ValueError):
            return None
        raw.pop("offset", None)
        upload = TusUpload(**raw)
        with contextlib.suppress(OSError):
            upload.offset = self.data_path(upload_id).stat().st_size
        if upload.media_id is not None:
            upload.offset = upload.length  # accepted: the bytes now live in storage
        return upload

    def save(self, upload: TusUpload) -> None:
        body = asdict(upload)
        body.pop("offset")
        tmp = self._info_path(upload.id).with_suffix(".json.tmp")
        tmp.write_text(json.dumps(body))
        os.replace(tmp, self._info_path(upload.id))

    def touch(self, upload: TusUpload, now: float | None = None) -> None:
        """Activity pushes the expiry back: an upload expires ``ttl`` after its last PATCH."""
        upload.expires = (time.time() if now is None else now) + self.ttl
        self.save(upload)

    def drop_bytes(self, upload_id: str) -> None:
        with contextlib.suppress(FileNotFoundError):
            self.data_path(upload_id).unlink()

    def remove(self, upload_id: str) -> None:
        for path in (self._info_path(upload_id), self.data_path(upload_id), self._lock_path(upload_id)):
            with contextlib.suppress(FileNotFoundError):
                path.unlink()

    @contextlib.contextmanager
    def locked(self, upload_id: str) -> Iterator[None]:
        """One writer per upload; a second PATCH while one runs is a 409, as tus suggests."""
        self.root.mkdir(parents=True, exist_ok=True)
        fd = os.open(self._lock_path(upload_id), os.O_RDWR | os.O_CREAT, 0o600)
        try:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                raise Conflict("Another request is writing to this upload; retry when it ends.") from None
            yield
        finally:
            os.close(fd)

    def sweep(self, now: float | None = None) -> int:
        """Remove expired uploads (bytes and state); uploads being written to are left alone."""
        now = time.time() if now is None else now
        if not self.root.is_dir():
            return 0
        removed = 0
        for info in self.root.glob("*.json"):
            upload = self.get(info.stem)
            if upload is None or upload.expires > now:
                continue
            try:
                with self.locked(upload.id):
                    self.remove(upload.id)
                    removed += 1
            except Conflict:
                continue
        # Bytes whose state file is gone (a crash between the two writes).
        for data in self.root.glob("*.bin"):
            if not self._info_path(data.stem).exists():
                with contextlib.suppress(OSError):
                    if data.stat().st_mtime + self.ttl <= now:
                        data.unlink()
        return removed
