"""One error shape everywhere: {"error": {"code", "message"}}."""

from __future__ import annotations

import logging

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse
from starlette.exceptions import HTTPException as StarletteHTTPException

from media_service.errors import MediaError

log = logging.getLogger("media_service.api")

STATUS_CODES = {400: "bad_request", 401: "unauthorized", 403: "forbidden", 404: "not_found",
                405: "method_not_allowed", 413: "file_too_large", 415: "unsupported_media_type",
                422: "invalid_request", 429: "rate_limited", 503: "unavailable"}


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
