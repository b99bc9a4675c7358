"""Per request: a request id (X-Request-ID echoed, or made), bound to every log line of the request; an
access line; media_http_requests_total / media_http_request_seconds by route template, method and status."""

from __future__ import annotations

import logging
import re
import secrets
import time
from collections.abc import Callable, Sequence

from starlette.routing import BaseRoute, Match
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from media_service import logs, metrics

log = logging.getLogger("media_service.api.access")

REQUEST_ID_HEADER = "x-request-id"
_SANE_ID = re.compile(r"^[A-Za-z0-9._:/+=-]{1,128}$")
UNMATCHED = "unmatched"  # one label for every path no route knows (scanners must not grow the series)


def request_id_from(scope: Scope) -> str:
    for name, value in scope.get("headers", []):
        if name == b"x-request-id":
            candidate: str = bytes(value).decode("latin-1").strip()
            if _SANE_ID.match(candidate):
                return candidate
            break
    return secrets.token_hex(16)


def route_template(scope: Scope, routes: Sequence[BaseRoute]) -> str:
    route = scope.get("route")
    if route is None:  # answered before routing (a body over the cap): find the route the way the router would
        partial = None
        for candidate in routes:
            match, _ = candidate.matches(scope)
            if match is Match.FULL:
                route = candidate
                break
            if match is Match.PARTIAL and partial is None:
                partial = candidate
        route = route or partial
    path = getattr(route, "path", None)
    return path if isinstance(path, str) and path else UNMATCHED


class RequestObservability:
    def __init__(self, app: ASGIApp, routes: Callable[[], Sequence[BaseRoute]]) -> None:
        self.app = app
        self.routes = routes

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        request_id = request_id_from(scope)
        status = [500]
        started = time.perf_counter()

        async def send_with_id(message: Message) -> None:
            if message["type"] == "http.response.start":
                status[0] = int(message["status"])
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", request_id.encode("latin-1"))]}
            await send(message)

        with logs.request_context(request_id):
            try:
                await self.app(scope, receive, send_with_id)
            finally:
                elapsed = time.perf_counter() - started
                route = route_template(scope, self.routes())
                method = str(scope.get("method", "GET"))
                metrics.HTTP_REQUESTS.labels(route=route, method=method, status=str(status[0])).inc()
                metrics.HTTP_SECONDS.labels(route=route, method=method).observe(elapsed)
                log.info("%s %s %d %.1fms", method, scope.get("path", ""), status[0], elapsed * 1000)
