"""The app factory: the one place the API reads settings."""

from __future__ import annotations

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware

from media_service.api import errors
from media_service.api.limits import BodySizeLimit
from media_service.api.observe import RequestObservability
from media_service.api.routes_catalogue import router as catalogue_router
from media_service.api.routes_covers import router as covers_router
from media_service.api.routes_demo import router as demo_router
from media_service.api.routes_events import router as events_router
from media_service.api.routes_media import router as media_router
from media_service.api.routes_misc import router as misc_router
from media_service.api.routes_notes import router as notes_router
from media_service.api.routes_uploads import TusHeaders, tus_store
from media_service.api.routes_uploads import router as uploads_router
from media_service.api.services import Services, build_services
from media_service.config import Settings, load_settings
from media_service.instrument import InstrumentedStorage, queue_stats_source

# Multipart framing and the recipe field ride on top of the file itself.
BODY_OVERHEAD = 64 * 1024


def create_app(settings: Settings | None = None, services: Services | None = None) -> FastAPI:
    settings = settings or load_settings()
    app = FastAPI(title="notes-media", version="0.1.0",
                  description="Upload note photos with an edit recipe; poll; download renditions.")
    svc = app.state.services = services or build_services(settings)
    if not isinstance(svc.storage, InstrumentedStorage):
        svc.storage = InstrumentedStorage(svc.storage)  # counts media_storage_errors_total
    app.state.queue_stats = queue_stats_source(svc.repo, settings.broker_url)  # media_queue_* at scrape time
    errors.install(app)
    app.include_router(covers_router, responses=errors.ERROR_RESPONSES)  # before /{media_id} catch-alls
    app.include_router(media_router, responses=errors.ERROR_RESPONSES)
    app.include_router(catalogue_router, responses=errors.ERROR_RESPONSES)
    app.include_router(events_router, responses=errors.ERROR_RESPONSES)
    app.include_router(notes_router, responses=errors.ERROR_RESPONSES)
    app.include_router(uploads_router, responses=errors.ERROR_RESPONSES)
    app.include_router(misc_router, responses=errors.ERROR_RESPONSES)
    app.include_router(demo_router)  # /demo, a web page; not in the OpenAPI schema
    tus_store(settings.data_dir, settings.upload_expiry_seconds).sweep()  # uploads that expired while we were down
    app.add_middleware(TusHeaders)
    app.add_middleware(BodySizeLimit, max_bytes=settings.limits.max_upload_bytes + BODY_OVERHEAD)
    if settings.cors_origins:
        add_cors(app, settings.cors_origins)
    # Outermost: request id, access line and HTTP metrics cover every answer, a 413 from the cap too.
    app.add_middleware(RequestObservability, routes=lambda: app.router.routes)
    return app


# What a browser client must send and read: tus's and our own headers besides the simple ones.
CORS_ALLOW_HEADERS = ["Authorization", "Content-Type", "Idempotency-Key", "Tus-Resumable", "Upload-Length",
                      "Upload-Offset", "Upload-Metadata", "Upload-Checksum", "Upload-Defer-Length", "Last-Event-ID"]
CORS_EXPOSE_HEADERS = ["Location", "Retry-After", "Idempotent-Replayed", "X-Request-Id", "Media-Id", "Tus-Resumable",
                       "Tus-Version", "Tus-Extension", "Tus-Max-Size", "Tus-Checksum-Algorithm", "Upload-Offset",
                       "Upload-Length", "Upload-Expires", "Upload-Metadata"]


def add_cors(app: FastAPI, origins: list[str]) -> None:
    # Bearer keys, not cookies: no credentials mode, so "*" stays a valid choice.
    app.add_middleware(CORSMiddleware, allow_origins=origins, allow_credentials=False,
                       allow_methods=["GET", "HEAD", "POST", "PUT", "PATCH", "DELETE", "OPTIONS"],
                       allow_headers=CORS_ALLOW_HEADERS, expose_headers=CORS_EXPOSE_HEADERS, max_age=600)
