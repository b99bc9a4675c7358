"""The typed client (media_service.client) against the real stack: what an app does, end to end."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest

from media_service.client import ApiError, MediaClient
from tests.e2e.conftest import Stack
from tests.support.media import quadrant_image, save_jpeg

pytestmark = pytest.mark.e2e


def test_upload_listen_wait_download_and_note(stack: Stack, tmp_path: Path) -> None:
    photo = save_jpeg(quadrant_image(1600, 1200), tmp_path / "p.jpg")
    with MediaClient(stack.base_url, "alice-key") as client:
        assert any(f["id"] == "starter/warm" for f in client.filters())
        media = client.upload(photo, {"aspect": "1:1", "filter": {"id": "starter/warm"}}, idempotency_key="c-1")
        assert client.upload(photo, {"aspect": "1:1", "filter": {"id": "starter/warm"}},
                             idempotency_key="c-1").id == media.id  # a retry is the same media
        statuses = [event["status"] for event in client.events(media.id)]
        assert statuses[-1] == "ready"
        done = client.wait(media.id)
        best = done.rendition("w1080.webp")
        assert (best.width, best.height) == (1080, 1080)
        assert httpx.get(best.url, timeout=30).status_code == 200
        note = client.create_note([media.id])
        assert client.note(note.id).status == "ready" and note.aspect == "1:1"

        with pytest.raises(ApiError) as refused:
            client.upload(photo, {"filter": {"id": "starter/nope"}})
        assert refused.value.status == 422 and refused.value.code == "unknown_pack_item"
        with pytest.raises(ApiError) as missing:
            client.get("0" * 32)
        assert missing.value.status == 404 and missing.value.code == "not_found"
    with MediaClient(stack.base_url, "wrong") as stranger, pytest.raises(ApiError) as denied:
        stranger.get(media.id)
    assert denied.value.code == "unauthorized"
