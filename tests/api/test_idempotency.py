"""Idempotency-Key on uploads: a retried request returns the same media, never a second one; the same key
with a different body is refused; a failed first attempt leaves the key free."""

from __future__ import annotations

import json
import threading
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from media_service.config import Settings
from tests.support.media import quadrant_image, save_jpeg
from tests.support.packs import write_look_pack, write_sticker_pack

ALICE = {"Authorization": "Bearer alice-key"}
BOB = {"Authorization": "Bearer bob-key"}


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", api_keys="alice-key=alice,bob-key=bob",
                    filters_dirs=[write_look_pack(tmp_path / "f")], stickers_dirs=[write_sticker_pack(tmp_path / "s")],
                    music_dirs=[])


@pytest.fixture()
def photos(tmp_path: Path) -> tuple[bytes, bytes]:
    return (save_jpeg(quadrant_image(400, 300), tmp_path / "a.jpg").read_bytes(),
            save_jpeg(quadrant_image(300, 400), tmp_path / "b.jpg").read_bytes())


def post(c: TestClient, body: bytes, key: str | None, recipe: dict[str, object] | None = None,
         headers: dict[str, str] = ALICE) -> httpx.Response:
    h = dict(headers) | ({"Idempotency-Key": key} if key is not None else {})
    return c.post("/v1/media", headers=h, files={"file": ("p.jpg", body)},
                  data={"recipe": json.dumps(recipe)} if recipe else None)


def queued(settings: Settings) -> int:
    folder = settings.broker_folder / "queue"
    return len(list(folder.glob("*.msg"))) if folder.exists() else 0


def test_retry_returns_the_same_media(client: TestClient, settings: Settings, photos: tuple[bytes, bytes]) -> None:
    first = post(client, photos[0], "k-1", {"aspect": "1:1"})
    again = post(client, photos[0], "k-1", {"aspect": "1:1"})
    assert first.status_code == again.status_code == 202
    assert first.json()["id"] == again.json()["id"]
    assert again.headers["idempotent-replayed"] == "true"
    assert queued(settings) == 1  # one job, not two
    other = post(client, photos[0], "k-2", {"aspect": "1:1"})
    assert other.json()["id"] != first.json()["id"]
    # Keys belong to their owner: Bob's k-1 is his own.
    assert post(client, photos[0], "k-1", {"aspect": "1:1"}, BOB).json()["id"] != first.json()["id"]


def test_same_key_other_body_is_refused(client: TestClient, settings: Settings, photos: tuple[bytes, bytes]) -> None:
    assert post(client, photos[0], "k", {"aspect": "1:1"}).status_code == 202
    for body, recipe in ((photos[1], {"aspect": "1:1"}), (photos[0], {"aspect": "3:4"})):
        r = post(client, body, "k", recipe)
        assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert queued(settings) == 1


def test_failed_first_attempt_frees_the_key(client: TestClient, photos: tuple[bytes, bytes]) -> None:
    r = post(client, photos[0], "k", {"filter": {"id": "tlooks/nope"}})
    assert r.status_code == 422
    r = post(client, b"not an image", "k2")
    assert r.status_code == 415
    assert post(client, photos[1], "k2").status_code == 202


def test_concurrent_retries_create_one_media(client: TestClient, settings: Settings,
                                             photos: tuple[bytes, bytes]) -> None:
    results: list[httpx.Response] = []
    barrier = threading.Barrier(4)

    def send() -> None:
        barrier.wait()
        results.append(post(client, photos[0], "race"))

    threads = [threading.Thread(target=send) for _ in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join()
    codes = sorted(r.status_code for r in results)
    ids = {r.json()["id"] for r in results if r.status_code == 202}
    assert len(ids) == 1 and set(codes) <= {202, 409}
    assert queued(settings) == 1


def test_bad_key_and_documented(client: TestClient, photos: tuple[bytes, bytes]) -> None:
    r = post(client, photos[0], "x" * 300)
    assert r.status_code == 422 and r.json()["error"]["field"] == "Idempotency-Key"
    params = client.get("/openapi.json").json()["paths"]["/v1/media"]["post"]["parameters"]
    assert any(p["name"] == "Idempotency-Key" and p["in"] == "header" for p in params)
