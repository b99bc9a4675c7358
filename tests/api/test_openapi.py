"""The OpenAPI document covers every public route and every error shape."""

from __future__ import annotations

from pathlib import Path

from fastapi.routing import APIRoute

from media_service.api import create_app
from media_service.api.routes_catalogue import router as catalogue
from media_service.api.routes_events import router as events
from media_service.api.routes_media import router as media
from media_service.api.routes_misc import router as misc
from media_service.api.routes_notes import router as notes
from media_service.api.routes_uploads import router as uploads
from media_service.config import Settings


def test_every_route_documented_with_the_error_shape(tmp_path: Path) -> None:
    app = create_app(Settings(data_dir=tmp_path, api_keys="k=o", filters_dirs=[], stickers_dirs=[], music_dirs=[]))
    spec = app.openapi()
    schemas = spec["components"]["schemas"]
    assert set(schemas["ErrorResponse"]["properties"]) == {"error"}
    assert {"code", "message"} <= set(schemas["ErrorBody"]["required"])
    public = [(r.path, m) for router in (media, catalogue, events, notes, uploads, misc) for r in router.routes
              if isinstance(r, APIRoute) and r.include_in_schema for m in r.methods - {"HEAD"}]
    assert len(public) >= 20
    for path, method in public:
        operation = spec["paths"][path][method.lower()]
        errors = {code: r for code, r in operation["responses"].items() if code[0] in "45"}
        assert {"401", "422", "503"} <= set(errors), (method, path)
        for code, response in errors.items():
            schema = response["content"]["application/json"]["schema"]
            assert schema == {"$ref": "#/components/schemas/ErrorResponse"}, (method, path, code)
