"""One error shape everywhere: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging
from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException as StarletteHTTPException

from media_service.errors import MediaError

log = logging.getLogger("media_service.api")

STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "file_too_large", 415: "unsupported_media_type",
                422: "invalid_request", 429: "rate_limited", 503: "unavailable"}


class ErrorBody(BaseModel):
    model_config = ConfigDict(extra="allow")  # some errors add context: field, retry_after, quota, waiting

    code: str = Field(description="machine-readable, stable; see the README's error table")
    message: str = Field(description="for people; may change")
    field: str | None = Field(default=None, description="the request field at fault, when there is one")


class ErrorResponse(BaseModel):
    error: ErrorBody


_ERROR = {"model": ErrorResponse}
# Documented on every route: what any request may meet (auth, rate limits, body caps, a dependency down).
ERROR_RESPONSES: dict[int | str, dict[str, Any]] = {
    401: {**_ERROR, "description": "no or unknown API key (`unauthorized`)"},
    404: {**_ERROR, "description": "no such thing, or another owner's (`not_found`)"},
    413: {**_ERROR, "description": "body over the upload limit (`file_too_large`)"},
    415: {**_ERROR, "description": "not an accepted format (`unsupported_media_type`)"},
    422: {**_ERROR, "description": "invalid request or recipe (`invalid_request`, `invalid_recipe`, …)"},
    429: {**_ERROR, "description": "rate or quota exceeded (`rate_limited`, `quota_exceeded`); see Retry-After"},
    500: {**_ERROR, "description": "our side (`internal_error`, …)"},
    503: {**_ERROR, "description": "a dependency is down or the queue is full; see Retry-After"},
}


def error_response(status: int, code: str, message: str, headers: dict[str, str] | None = None,
                   **extra: object) -> JSONResponse:
    return JSONResponse({"error": {"code": code, "message": message, **extra}}, status_code=status,
                        headers=headers)


def install(app: FastAPI) -> None:
    @app.exception_handler(MediaError)
    async def _media_error(_request: Request, exc: MediaError) -> JSONResponse:
        if exc.http_status >= 500:
            log.warning("%s: %s (%s)", exc.code, exc.message, exc.detail)
        retry_after = getattr(exc, "retry_after", None)
        headers = {"Retry-After": str(retry_after or 5)} if exc.http_status in (429, 503) else None
        if exc.http_status == 401:
            headers = {"WWW-Authenticate": "Bearer"}
        return JSONResponse({"error": exc.public()}, status_code=exc.http_status, headers=headers)

    @app.exception_handler(StarletteHTTPException)
    async def _http_error(_request: Request, exc: StarletteHTTPException) -> JSONResponse:
        code = STATUS_CODES.get(exc.status_code, "error")
        message = exc.detail if isinstance(exc.detail, str) else code.replace("_", " ")
        return error_response(exc.status_code, code, message, headers=dict(exc.headers or {}))

    @app.exception_handler(RequestValidationError)
    async def _validation_error(_request: Request, exc: RequestValidationError) -> JSONResponse:
        first = exc.errors()[0] if exc.errors() else {"loc": (), "msg": "invalid"}
        field = ".".join(str(p) for p in first.get("loc", ()) if p not in ("body", "query", "path"))
        return error_response(422, "invalid_request", f"{field}: {first.get('msg')}", field=field)

    @app.exception_handler(Exception)
    async def _unexpected(_request: Request, exc: Exception) -> JSONResponse:
        log.exception("unhandled error", exc_info=exc)
        return error_response(500, "internal_error", "Something went wrong on our side.")
