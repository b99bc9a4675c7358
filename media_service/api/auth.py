"""Bearer API keys, compared by SHA-256 hash (configured hashes, or keys kept hashed in the database), and
the per-key request rate limit that every authenticated request passes."""

from __future__ import annotations

from fastapi import Request

from media_service.api.services import Services
from media_service.db import hash_key
from media_service.errors import TooManyRequests, Unauthorized
from media_service.ratelimit import retry_after


def owner_for(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    digest = hash_key(token)
    svc: Services = request.app.state.services
    owner = svc.keys.owner(digest)
    if owner is None:
        raise Unauthorized("The API key is not valid.")
    wait = svc.limiter.take(f"req:{digest[:32]}", svc.settings.rate_limit_per_minute)
    if wait > 0:
        raise TooManyRequests(retry_after=retry_after(wait))
    request.state.key_hash = digest
    return owner


def take_upload_slot(request: Request, svc: Services) -> None:
    """Uploads have their own, smaller bucket per key: they cost storage, probing and a job."""
    wait = svc.limiter.take(f"upload:{request.state.key_hash[:32]}", svc.settings.upload_rate_per_minute)
    if wait > 0:
        raise TooManyRequests("Too many uploads for this API key; slow down.", retry_after=retry_after(wait))
