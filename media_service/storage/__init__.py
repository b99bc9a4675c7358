"""Object storage: one protocol (``Storage``), a local-disk and an S3 backend, chosen by URL."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

from media_service.storage.base import Storage, StoredObject
from media_service.storage.local import LocalStorage
from media_service.storage.s3 import S3Storage

__all__ = ["LocalStorage", "S3Storage", "Storage", "StoredObject", "open_storage"]


def open_storage(
    storage_url: str,
    *,
    s3_endpoint_url: str | None,
    public_base_url: str,
    signing_secret: bytes,
) -> Storage:
    """Open the storage a URL names: ``file:///abs/dir`` or ``s3://bucket[/prefix]``.

    ``public_base_url`` and ``signing_secret`` are used by local storage for its signed download URLs;
    S3 presigns its own. ``s3_endpoint_url`` points S3 at a compatible server (None for AWS).
    """
    parts = urlsplit(storage_url)
    if parts.query or parts.fragment:
        raise ValueError(f"storage URL {storage_url!r} must not have a query or fragment")
    if parts.scheme == "file":
        if parts.netloc not in ("", "localhost"):
            raise ValueError(
                f"storage URL {storage_url!r} names host {parts.netloc!r}; use file:///absolute/dir"
            )
        path = unquote(parts.path)
        if not path.startswith("/"):
            raise ValueError(f"storage URL {storage_url!r} must name an absolute directory")
        return LocalStorage(Path(path), public_base_url=public_base_url, signing_secret=signing_secret)
    if parts.scheme == "s3":
        if not parts.netloc:
            raise ValueError(f"storage URL {storage_url!r} names no bucket; use s3://bucket/prefix")
        return S3Storage(parts.netloc, unquote(parts.path), endpoint_url=s3_endpoint_url or None)
    raise ValueError(
        f"unsupported storage URL {storage_url!r}: expected file:///absolute/dir or s3://bucket/prefix"
    )
