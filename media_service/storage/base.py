"""The storage protocol: one contract, run against local disk and S3 (tests/contract)."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO, Protocol


@dataclass(frozen=True)
class StoredObject:
    key: str
    size: int
    content_type: str
    sha256: str | None = None  # set when known (put_* always computes it)


class Storage(Protocol):
    """Objects addressed by opaque keys like ``media/<id>/v1-ab12/w1080.webp``.

    Keys are made by the service, never from user file names; implementations still refuse keys that
    are absolute, contain ``..`` or empty segments.
    """

    def put_file(self, key: str, path: Path, content_type: str) -> StoredObject: ...

    def put_stream(self, key: str, stream: BinaryIO, content_type: str) -> StoredObject: ...

    def get_to_file(self, key: str, dest: Path) -> None:
        """Download ``key`` to ``dest``; raises StorageObjectMissing if absent."""

    def iter_bytes(self, key: str, chunk_size: int = 1 << 16) -> Iterator[bytes]:
        """Stream an object's bytes; raises StorageObjectMissing if absent."""
        ...

    def stat(self, key: str) -> StoredObject | None: ...

    def delete(self, key: str) -> None:
        """Idempotent: deleting a missing key is not an error."""

    def delete_prefix(self, prefix: str) -> int:
        """Delete every object whose key starts with ``prefix``; returns how many were deleted."""
        ...

    def list_keys(self, prefix: str) -> list[str]: ...

    def url(self, key: str, *, expires_in: int, content_type: str | None = None) -> str:
        """A short-lived URL that downloads the object without an API key."""
        ...

    def check(self) -> None:
        """Raise StorageUnavailable unless the storage can be read and written (doctor, readiness)."""
