"""Bearer API keys, compared by SHA-256 hash: the settings hold key → owner, the process keeps hashes."""

from __future__ import annotations

import hashlib
import hmac

from fastapi import Request

from media_service.errors import Unauthorized


def owner_for(request: Request) -> str:
    header = request.headers.get("authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized()
    digest = hashlib.sha256(token.strip().encode()).hexdigest()
    owners: dict[str, str] = request.app.state.services.key_owners
    for known, owner in owners.items():
        if hmac.compare_digest(known, digest):
            return owner
    raise Unauthorized("The API key is not valid.")
