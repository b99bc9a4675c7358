"""Idempotency-Key on every creating request: the first request with a key runs; a retry with the same key
and the same request gets what the first created (header Idempotent-Replayed: true), never a second one;
the same key with another request is refused (422 idempotency_key_reused). Keys are scoped per route."""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from typing import Any, TypeVar

from fastapi import Request
from starlette.responses import Response

from media_service.api.services import Services
from media_service.errors import Conflict, IdempotencyKeyReused, InvalidRequest

R = TypeVar("R", bound=Response)
REPLAYED = {"Idempotent-Replayed": "true"}

IDEMPOTENCY_HEADER: dict[str, Any] = {
    "name": "Idempotency-Key", "in": "header", "required": False,
    "schema": {"type": "string", "minLength": 1, "maxLength": 255},
    "description": "Retrying with the same key and the same request returns what the first request created "
                   "(header Idempotent-Replayed: true), never a second one; the same key with another request is "
                   "422 idempotency_key_reused; keys are kept for 24 h.",
}


def idempotency_key(request: Request) -> str | None:
    key = request.headers.get("idempotency-key")
    if key is None:
        return None
    if not 1 <= len(key) <= 255 or not key.isascii() or not key.isprintable():
        raise InvalidRequest("Idempotency-Key must be 1–255 printable ASCII characters.", field="Idempotency-Key")
    return key


def fingerprint_of(*parts: Any) -> str:
    """What makes two requests the same request, for values that serialise as JSON."""
    return hashlib.sha256(json.dumps(parts, sort_keys=True, default=str).encode()).hexdigest()


def claim(svc: Services, owner: str, scoped_key: str, fingerprint: str) -> str | None:
    """None: this request now holds the key and goes ahead. Otherwise the id the first request created."""
    seen = svc.idempotency.begin(owner, scoped_key, fingerprint)
    if seen is None:
        return None
    if seen.fingerprint != fingerprint:
        raise IdempotencyKeyReused()
    if seen.media_id is None:
        raise Conflict("A request with this Idempotency-Key is still in progress; retry shortly.")
    return seen.media_id


def once(svc: Services, owner: str, scope: str, key: str | None, fingerprint: str,
         create: Callable[[], tuple[str, R]], replay: Callable[[str], R]) -> R:
    """Run ``create`` (which returns the created id and the answer) once per key; ``replay`` answers a retry
    from the id. Without a key, ``create`` simply runs."""
    if key is None:
        return create()[1]
    scoped = f"{scope} {key}"
    existing = claim(svc, owner, scoped, fingerprint)
    if existing is not None:
        answer = replay(existing)
        answer.headers.update(REPLAYED)
        return answer
    try:
        created, answer = create()
    except BaseException:
        svc.idempotency.abandon(owner, scoped)
        raise
    svc.idempotency.finish(owner, scoped, created)
    return answer
