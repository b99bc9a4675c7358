"""Delivering webhook events: signed, retried with backoff for about a day, every attempt logged.

The receiver checks ``Notes-Signature: t=<unix seconds>,v1=<hex>``, where ``v1`` is HMAC-SHA256 with the
webhook's secret over ``f"{t}.{raw body}"`` (README: verifying a delivery).
"""

from __future__ import annotations

import hashlib
import hmac
import ipaddress
import json
import logging
import socket
import time
import urllib.error
import urllib.request
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from urllib.parse import urlsplit

from sqlalchemy import or_, select, update

from media_service.db.models import WebhookDelivery, utcnow
from media_service.db.repo import Database
from media_service.errors import InvalidRequest
from media_service.periodic import Periodic

log = logging.getLogger("media_service.webhooks")

# Seconds before each retry: about a day in all, then the delivery is given up.
BACKOFF = (10, 30, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 28800)
TIMEOUT = 10.0
LOCK = timedelta(seconds=60)  # a delivery in hand is not taken by another worker for this long


def sign(secret: str, timestamp: int, body: bytes) -> str:
    mac = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256).hexdigest()
    return f"t={timestamp},v1={mac}"


def verify(secret: str, header: str, body: bytes, tolerance: int = 300, now: float | None = None) -> bool:
    """What a receiver does (and the README shows): recompute, compare in constant time, refuse old ones."""
    try:
        parts = dict(item.split("=", 1) for item in header.split(","))
        timestamp = int(parts["t"])
    except (ValueError, KeyError):
        return False
    if abs((now or time.time()) - timestamp) > tolerance:
        return False
    expected = sign(secret, timestamp, body).split("v1=", 1)[1]
    return hmac.compare_digest(expected, parts.get("v1", ""))


def check_url(url: str, allow_private: bool) -> None:
    """http(s) only, and (unless allowed, for development) not to this machine or a private network: a
    webhook must not become a way to reach what the service can see (SSRF)."""
    parts = urlsplit(url)
    if parts.scheme not in ("http", "https") or not parts.hostname:
        raise InvalidRequest("A webhook URL is http:// or https:// with a host.", field="url")
    if allow_private:
        return
    try:
        addresses = {info[4][0] for info in socket.getaddrinfo(parts.hostname, parts.port or 443)}
    except OSError:
        raise InvalidRequest("The webhook's host does not resolve.", field="url") from None
    for address in addresses:
        ip = ipaddress.ip_address(str(address).split("%")[0])
        if ip.is_private or ip.is_loopback or ip.is_link_local or ip.is_reserved or ip.is_multicast:
            raise InvalidRequest("Webhooks cannot point at private or local addresses.", field="url")


@dataclass(frozen=True)
class Sent:
    status: int | None
    error: str | None
    ms: int


Post = Callable[[str, bytes, dict[str, str]], Sent]


class _NoRedirects(urllib.request.HTTPRedirectHandler):
    def redirect_request(self, *_args: object, **_kwargs: object) -> None:
        return None  # a 3xx is an answer, not a hop: a redirect must not lead to where the URL could not


_OPENER = urllib.request.build_opener(_NoRedirects)


def poster(allow_private: bool) -> Post:
    """POST, checking the URL again at delivery (its host may resolve elsewhere by now)."""

    def post(url: str, body: bytes, headers: dict[str, str]) -> Sent:
        try:
            check_url(url, allow_private)
        except InvalidRequest as exc:
            return Sent(None, exc.message, 0)
        return http_post(url, body, headers)

    return post


def http_post(url: str, body: bytes, headers: dict[str, str]) -> Sent:
    started = time.monotonic()
    req = urllib.request.Request(url, data=body, method="POST", headers=headers)
    try:
        with _OPENER.open(req, timeout=TIMEOUT) as resp:
            return Sent(resp.status, None, int((time.monotonic() - started) * 1000))
    except urllib.error.HTTPError as err:
        return Sent(err.code, None, int((time.monotonic() - started) * 1000))
    except (OSError, ValueError) as exc:
        return Sent(None, type(exc).__name__ + ": " + str(exc)[:200], int((time.monotonic() - started) * 1000))


def _due(db: Database, now: datetime, limit: int) -> list[str]:
    with db.session() as s:
        return list(s.scalars(select(WebhookDelivery.id).where(
            WebhookDelivery.state == "pending", WebhookDelivery.next_attempt_at <= now,
            or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now))
            .order_by(WebhookDelivery.next_attempt_at).limit(limit)))


def _take(db: Database, delivery_id: str, now: datetime) -> WebhookDelivery | None:
    with db.session() as s:
        done = s.execute(update(WebhookDelivery).where(
            WebhookDelivery.id == delivery_id, WebhookDelivery.state == "pending",
            or_(WebhookDelivery.locked_until.is_(None), WebhookDelivery.locked_until < now))
            .values(locked_until=now + LOCK))
        if not done.rowcount:  # type: ignore[attr-defined]
            return None
        row = s.get(WebhookDelivery, delivery_id)
        if row is not None:
            s.expunge(row)
        return row


def deliver_due(db: Database, secrets_by_hook: Callable[[str], tuple[str, str] | None], post: Post = http_post,
                backoff: Sequence[float] = BACKOFF, limit: int = 50) -> int:
    """Send what is due; returns how many were attempted. ``secrets_by_hook``: webhook id → (url, secret),
    None when the webhook was deleted (its deliveries are dropped)."""
    now = utcnow()
    sent = 0
    for delivery_id in _due(db, now, limit):
        row = _take(db, delivery_id, now)
        if row is None:
            continue
        hook = secrets_by_hook(row.webhook_id)
        if hook is None:
            _finish(db, row, "failed", {"at": now.isoformat(), "error": "webhook deleted"}, None)
            continue
        url, secret = hook
        body = json.dumps(row.payload, separators=(",", ":"), sort_keys=True).encode()
        timestamp = int(time.time())
        result = post(url, body, {"Content-Type": "application/json", "User-Agent": "notes-media-webhooks/1",
                                  "Notes-Event-Id": row.id, "Notes-Event-Type": row.event,
                                  "Notes-Signature": sign(secret, timestamp, body)})
        sent += 1
        entry = {"at": now.isoformat(), "attempt": row.attempts + 1, "status": result.status, "error": result.error,
                 "ms": result.ms}
        if result.status is not None and 200 <= result.status < 300:
            _finish(db, row, "delivered", entry, None)
        elif row.attempts + 1 > len(backoff):
            _finish(db, row, "failed", entry, None)
            log.warning("webhook delivery %s for media %s given up after %d attempts", row.id, row.media_id,
                        row.attempts + 1)
        else:
            _finish(db, row, "pending", entry, now + timedelta(seconds=backoff[row.attempts]))
    return sent


def _finish(db: Database, row: WebhookDelivery, state: str, entry: dict[str, object],
            next_at: datetime | None) -> None:
    with db.session() as s:
        values: dict[str, object] = {"state": state, "attempts": row.attempts + (1 if "attempt" in entry else 0),
                                     "log": [*row.log, entry], "locked_until": None}
        if next_at is not None:
            values["next_attempt_at"] = next_at
        s.execute(update(WebhookDelivery).where(WebhookDelivery.id == row.id).values(**values))


class Deliverer(Periodic):
    """Delivers what is due every ``interval`` seconds (each worker's main process), draining a backlog."""

    def __init__(self, db: Database, lookup: Callable[[str], tuple[str, str] | None], interval: float = 1.0,
                 backoff: Sequence[float] = BACKOFF, allow_private: bool = False) -> None:
        post = poster(allow_private)

        def drain() -> None:
            while deliver_due(db, lookup, post, backoff=backoff) > 0:
                pass

        super().__init__("webhooks", interval, drain)
