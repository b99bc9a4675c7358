"""Webhook registration and the delivery log over HTTP, and server-sent events following a media."""

from __future__ import annotations

import json
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from media_service.api import create_app
from media_service.config import Settings
from tests.support.media import quadrant_image, save_jpeg

ALICE = {"Authorization": "Bearer alice-key"}
BOB = {"Authorization": "Bearer bob-key"}


def client_for(tmp_path: Path, **extra: object) -> Iterator[TestClient]:
    settings = Settings(data_dir=tmp_path / "data", api_keys="alice-key=alice,bob-key=bob",  # type: ignore[arg-type]
                        filters_dirs=[], stickers_dirs=[], music_dirs=[], **extra)
    with TestClient(create_app(settings)) as c:
        yield c


@pytest.fixture()
def client(tmp_path: Path) -> Iterator[TestClient]:
    yield from client_for(tmp_path)


def upload(c: TestClient, tmp_path: Path) -> str:
    photo = save_jpeg(quadrant_image(320, 240), tmp_path / "p.jpg").read_bytes()
    r = c.post("/v1/media", headers=ALICE, files={"file": ("p.jpg", photo)})
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def test_webhook_crud_and_ssrf_refusal(client: TestClient) -> None:
    r = client.post("/v1/webhooks", headers=ALICE, json={"url": "http://127.0.0.1:8080/hook"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "url"
    r = client.post("/v1/webhooks", headers=ALICE, json={"url": "http://169.254.169.254/latest"})
    assert r.status_code == 422
    assert client.post("/v1/webhooks", json={"url": "https://example.com/x"}).status_code == 401


def test_webhook_registered_and_its_log_per_media(tmp_path: Path) -> None:
    for c in client_for(tmp_path, webhook_allow_private=True):
        r = c.post("/v1/webhooks", headers=ALICE, json={"url": "http://127.0.0.1:9/hook"})
        assert r.status_code == 201, r.text
        hook = r.json()
        assert hook["secret"].startswith("whsec_")
        listed = c.get("/v1/webhooks", headers=ALICE).json()["items"]
        assert listed == [{"id": hook["id"], "url": hook["url"], "created_at": hook["created_at"]}]
        assert "secret" not in listed[0] and c.get("/v1/webhooks", headers=BOB).json()["items"] == []
        media_id = upload(c, tmp_path)
        log = c.get(f"/v1/media/{media_id}/deliveries", headers=ALICE).json()["items"]
        assert [(d["event"], d["state"], d["attempts"]) for d in log] == [("media.queued", "pending", 0)]
        assert c.get(f"/v1/media/{media_id}/deliveries", headers=BOB).status_code == 404
        assert c.delete(f"/v1/webhooks/{hook['id']}", headers=BOB).status_code == 404
        assert c.delete(f"/v1/webhooks/{hook['id']}", headers=ALICE).status_code == 204


def test_server_sent_events_follow_the_media_to_its_end(client: TestClient, tmp_path: Path) -> None:
    media_id = upload(client, tmp_path)
    repo = client.app.state.services.repo  # type: ignore[attr-defined]

    def work() -> None:  # what a worker does, step by step
        time.sleep(0.8)
        claim = repo.claim(media_id, 3)
        time.sleep(0.8)
        repo.set_progress(media_id, claim.attempt, 0.5)
        time.sleep(0.8)
        repo.publish(media_id, claim.attempt, version="v1", renditions=[], source={}, placeholder=None)

    threading.Thread(target=work, daemon=True).start()
    seen = []
    with client.stream("GET", f"/v1/media/{media_id}/events", headers=ALICE) as r:
        assert r.status_code == 200 and r.headers["content-type"].startswith("text/event-stream")
        for line in r.iter_lines():
            if line.startswith("data: "):
                seen.append(json.loads(line[6:]))
    assert seen[0]["status"] == "queued" and seen[-1]["status"] == "ready"
    assert "processing" in [s["status"] for s in seen]
    assert any(s["progress"] == 0.5 for s in seen)  # progress moves in the stream
    assert client.get(f"/v1/media/{media_id}/events", headers=BOB).status_code == 404
