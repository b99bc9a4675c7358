"""The HTTP API (FastAPI)."""

from media_service.api.app import create_app

__all__ = ["create_app"]
