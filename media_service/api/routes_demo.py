"""The /demo page: a small web client of this API (upload, look, stickers, music, progress, renditions, HLS).

Its sources are in web/; scripts/build-web bundles them with esbuild (hls.js included) into demo_static/ next to
this module. Nothing on the page comes from another site: the Content-Security-Policy allows scripts and styles
from this server only (images, media and requests may also go to the storage's signed URLs)."""

from __future__ import annotations

import functools
import hashlib
import html
import re
from pathlib import Path

from fastapi import APIRouter, Request
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse

from media_service.api.errors import error_response
from media_service.api.routes_media import Svc
from media_service.config import Settings
from media_service.errors import NotFound

router = APIRouter(include_in_schema=False)

STATIC_DIR = Path(__file__).with_name("demo_static")
# The key `media-service dev` configures (media_service.cli.DEV_KEY): documented, so no secret.
DEV_KEY = "dev-key"
ASSET_NAME = re.compile(r"[a-z0-9][a-z0-9_-]{0,63}\.(js|css)")  # whole names only (fullmatch)
ASSET_TYPES = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
IMMUTABLE = "public, max-age=31536000, immutable"
CSP = ("default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data: blob: http: https:; "
       "media-src 'self' blob: http: https:; connect-src 'self' http: https:; worker-src 'self' blob:; "
       "object-src 'none'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
PAGE_HEADERS = {"Cache-Control": "no-cache", "Content-Security-Policy": CSP, "X-Content-Type-Options": "nosniff",
                "Referrer-Policy": "no-referrer"}


def dev_key(settings: Settings) -> str:
    """The key the page fills in: the development key, only on the embedded defaults that `media-service dev`
    runs (SQLite, local disk) and only when that very key is configured in the clear. Never anything else."""
    embedded = settings.database_url.startswith("sqlite") and settings.storage_url.startswith("file://")
    keys = (pair.rpartition("=")[0].strip() for pair in settings.api_keys.split(","))
    return DEV_KEY if embedded and DEV_KEY in keys else ""


@functools.lru_cache(maxsize=32)
def _digest(path: Path, mtime_ns: int, size: int) -> str:
    """A short content hash for the asset URL's ?v=, recomputed when the file changes (a rebuild)."""
    return hashlib.sha256(path.read_bytes()).hexdigest()[:16]


def _version(path: Path) -> str:
    stat = path.stat()
    return _digest(path, stat.st_mtime_ns, stat.st_size)


def _not_built() -> JSONResponse:
    return error_response(503, "demo_not_built", "The demo page is not built: run scripts/build-web "
                          "(scripts/setup runs it) and reload.")


@router.get("/demo", response_model=None)
def demo_page(request: Request, svc: Svc) -> HTMLResponse | JSONResponse:
    page, js, css = (STATIC_DIR / name for name in ("demo.html", "demo.js", "demo.css"))
    if not (page.is_file() and js.is_file() and css.is_file()):
        return _not_built()
    assets = request.url_for("demo_asset", name="x").path.rsplit("/", 1)[0]  # a path: no host from the request
    text = (page.read_text(encoding="utf-8")
            .replace("{{js}}", html.escape(f"{assets}/demo.js?v={_version(js)}"))
            .replace("{{css}}", html.escape(f"{assets}/demo.css?v={_version(css)}"))
            .replace("{{dev_key}}", html.escape(dev_key(svc.settings))))
    return HTMLResponse(text, headers=PAGE_HEADERS)


@router.api_route("/demo/assets/{name}", methods=["GET", "HEAD"])
def demo_asset(name: str, v: str = "") -> FileResponse:
    """The bundle. Only the built .js and .css files by plain name; with the current ?v= cached for a year."""
    if not ASSET_NAME.fullmatch(name):
        raise NotFound("No such file.")
    path = STATIC_DIR / name
    if not path.is_file():
        raise NotFound("No such file.")
    cache = IMMUTABLE if v and v == _version(path) else "no-cache"
    return FileResponse(path, media_type=ASSET_TYPES[path.suffix],
                        headers={"Cache-Control": cache, "X-Content-Type-Options": "nosniff"})
