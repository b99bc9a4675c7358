"""The API in process (FastAPI's TestClient) on the settings each test module defines as its ``settings``
fixture (embedded defaults in a temp dir, with the keys and packs that module needs)."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from media_service.api import create_app
from media_service.config import Settings


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c
