"""Object keys and signed download URLs.

Both backends validate keys with the same rules, and the HTTP route that serves local files
(``/v1/files/{key}``) validates the key from the path and verifies the URL's signature with the helpers
here, so key rules and signatures live together.
"""

from __future__ import annotations

import hashlib
import hmac
import re
import time

# Longest lifetime S3 accepts for a presigned URL; the local backend uses the same bound so the two
# behave alike.
MAX_URL_EXPIRES_IN = 7 * 24 * 3600

_KEY_CHARS = re.compile(r"[A-Za-z0-9._/-]+")
# A version tag in the signed message means a future change of the format cannot be confused with it.
_SIGNATURE_DOMAIN = b"notes-media/files/v1\n"


def validate_key(key: str) -> str:
    """Return ``key`` if it is a safe object key, else raise ValueError.

    Segments may not start with ``.``: that refuses ``.`` and ``..`` and reserves dot-names for files a
    backend keeps next to objects (metadata sidecars, temp files, probes).
    """
    if not isinstance(key, str) or not key:
        raise ValueError("storage key must be a non-empty string")
    if not _KEY_CHARS.fullmatch(key):
        raise ValueError(f"storage key {key!r} may only contain A-Z a-z 0-9 . _ / -")
    if key.startswith("/"):
        raise ValueError(f"storage key {key!r} must be relative")
    if len(key) > 512:
        raise ValueError("storage key is longer than 512 characters")
    for segment in key.split("/"):
        if not segment:
            raise ValueError(f"storage key {key!r} has an empty segment")
        if segment.startswith("."):
            raise ValueError(f"storage key {key!r} has a segment starting with '.'")
    return key


def validate_prefix(prefix: str, *, allow_empty: bool) -> str:
    """Return ``prefix`` if it is a safe key prefix (a key, optionally ending in ``/``), else raise."""
    if prefix == "":
        if allow_empty:
            return prefix
        raise ValueError("storage prefix must not be empty")
    validate_key(prefix[:-1] if prefix.endswith("/") else prefix)
    return prefix


def sign(secret: bytes, key: str, expires: int) -> str:
    """Hex HMAC-SHA256 over the key and the expiry time (unix seconds)."""
    if not secret:
        raise ValueError("signing secret must not be empty")
    message = _SIGNATURE_DOMAIN + f"{key}\n{int(expires)}".encode()
    return hmac.new(secret, message, hashlib.sha256).hexdigest()


def verify(secret: bytes, key: str, expires: int, sig: str, now: float | None = None) -> bool:
    """True if ``sig`` was made by :func:`sign` for this key and expiry, and the expiry has not passed."""
    current = time.time() if now is None else now
    if current > expires:
        return False
    if not sig.isascii():
        return False
    try:
        validate_key(key)
    except ValueError:
        return False
    expected = sign(secret, key, expires)
    return hmac.compare_digest(expected, sig)


def signed_url(public_base_url: str, secret: bytes, key: str, expires: int) -> str:
    """The download URL the local file route serves: ``{base}/v1/files/{key}?expires=..&sig=..``."""
    validate_key(key)
    base = public_base_url.rstrip("/")
    # Valid keys only contain URL-safe characters, so the key needs no quoting.
    return f"{base}/v1/files/{key}?expires={int(expires)}&sig={sign(secret, key, expires)}"
