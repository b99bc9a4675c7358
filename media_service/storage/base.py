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


class MultipartStorage(Protocol):
    """Direct-to-storage uploads: the client sends parts to presigned URLs. S3 only; local storage refuses
    every call with NotSupported (422 not_supported)."""

    def check_multipart(self) -> None:
        """Raise NotSupported unless this backend takes direct uploads."""

    def create_multipart(self, key: str, content_type: str) -> str:
        """Start a multipart upload of ``key``; returns its upload id."""
        ...

    def presign_part(self, key: str, upload_id: str, part_number: int, *, expires_in: int) -> str: ...

    def complete_multipart(self, key: str, upload_id: str, parts: list[tuple[int, str]]) -> None:
        """Join the parts (number, ETag); a wrong or missing part is InvalidRequest (422)."""

    def abort_multipart(self, key: str, upload_id: str) -> None:
        """Idempotent: aborting an unknown or finished upload is not an error."""

    def read_range(self, key: str, start: int, length: int) -> bytes: ...

    def copy(self, src_key: str, dst_key: str, content_type: str, sha256: str) -> StoredObject:
        """Server-side copy, with the content type and sha256 the caller measured."""
        ...
