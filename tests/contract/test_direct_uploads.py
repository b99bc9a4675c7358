"""Direct-to-S3 uploads against the moto S3 server: the client PUTs parts to presigned URLs with httpx, the API
joins them, checks the object as it checks POST /v1/media and only then records and queues the media; a lying
file is refused and its staged object removed."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from fastapi.testclient import TestClient

from media_service.api import create_app
from media_service.config import Settings
from media_service.storage import S3Storage
from tests.contract.conftest import new_s3_storage
from tests.support.media import quadrant_image, save_jpeg
from tests.support.video import make_video

pytestmark = pytest.mark.s3
ALICE = {"Authorization": "Bearer alice-key"}
BOB = {"Authorization": "Bearer bob-key"}
MiB = 1024 * 1024


@pytest.fixture()
def s3(aws_env: None, moto_endpoint: str) -> S3Storage:
    return new_s3_storage(moto_endpoint, prefix="svc")


@pytest.fixture()
def settings(tmp_path: Path, s3: S3Storage, moto_endpoint: str) -> Settings:
    return Settings(data_dir=tmp_path / "data", api_keys="alice-key=alice,bob-key=bob",
                    storage_url=f"s3://{s3.bucket}/svc", s3_endpoint_url=moto_endpoint,
                    filters_dirs=[], stickers_dirs=[], music_dirs=[], direct_part_bytes=5 * MiB)


@pytest.fixture()
def client(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def queued(settings: Settings) -> int:
    folder = settings.broker_folder / "queue"
    return len(list(folder.glob("*.msg"))) if folder.exists() else 0


def big_photo(tmp_path: Path) -> bytes:
    """A real JPEG padded past one part (bytes after the end-of-image marker are ignored by decoders)."""
    jpeg = save_jpeg(quadrant_image(800, 600), tmp_path / "p.jpg").read_bytes()
    return jpeg + b"\0" * (5 * MiB + 300_000 - len(jpeg))


def start(c: TestClient, size: int, **extra: Any) -> dict[str, Any]:
    r = c.post("/v1/uploads/direct", headers=ALICE, json={"filename": "f", "size": size} | extra)
    assert r.status_code == 201, r.text
    body: dict[str, Any] = r.json()
    return body


def put_parts(started: dict[str, Any], data: bytes) -> list[dict[str, Any]]:
    done, at = [], 0
    for part in started["parts"]:
        chunk = data[at:at + part["size"]]
        at += part["size"]
        r = httpx.put(part["url"], content=chunk, timeout=30)  # straight to storage: no API key
        assert r.status_code == 200, r.text
        done.append({"part_number": part["part_number"], "etag": r.headers["etag"]})
    return done


def complete(c: TestClient, started: dict[str, Any], parts: list[dict[str, Any]],
             headers: dict[str, str] = ALICE) -> httpx.Response:
    return c.post(started["complete_url"], headers=headers, json={"parts": parts})


def test_parts_go_to_storage_and_the_media_is_queued(client: TestClient, settings: Settings, s3: S3Storage,
                                                      tmp_path: Path) -> None:
    data = big_photo(tmp_path)
    started = start(client, len(data), content_type="image/jpeg", recipe={"aspect": "1:1"})
    assert [p["size"] for p in started["parts"]] == [5 * MiB, len(data) - 5 * MiB]
    assert started["parts"][0]["url"].startswith(settings.s3_endpoint_url or "")
    parts = put_parts(started, data)
    assert complete(client, started, parts, BOB).status_code == 404  # another owner's upload
    r = complete(client, started, parts)
    assert r.status_code == 202, r.text
    media = r.json()
    assert r.headers["location"] == f"/v1/media/{media['id']}"
    assert media["status"] == "queued" and media["source"]["bytes"] == len(data) and media["kind"] == "image"
    assert queued(settings) == 1
    record = client.app.state.services.repo.get(media["id"])  # type: ignore[attr-defined]
    assert record.recipe["aspect"] == "1:1"
    original = s3.stat(record.original_key)
    assert original is not None and original.size == len(data) and original.content_type == "image/jpeg"
    assert original.sha256 is not None and len(original.sha256) == 64
    assert s3.list_keys("uploads/") == [f"uploads/{started['id']}/manifest.json"]  # the staged object is gone
    # Completing again (a retry after a lost answer) returns the same media and queues nothing more.
    again = complete(client, started, parts)
    assert again.status_code == 202 and again.json()["id"] == media["id"] and queued(settings) == 1


def test_a_video_is_probed_from_a_local_copy(client: TestClient, settings: Settings, tmp_path: Path) -> None:
    video = tmp_path / "v.mp4"
    make_video(video, width=320, height=240, seconds=1.0)
    data = video.read_bytes()
    started = start(client, len(data))
    assert len(started["parts"]) == 1
    r = complete(client, started, put_parts(started, data))
    assert r.status_code == 202, r.text
    assert r.json()["kind"] == "video" and r.json()["source"]["width"] == 320
    assert queued(settings) == 1


def test_a_file_that_lies_about_its_type_is_refused_and_removed(client: TestClient, settings: Settings,
                                                               s3: S3Storage) -> None:
    data = b"<html><script>alert(1)</script></html>" * 100
    started = start(client, len(data), content_type="image/jpeg")
    r = complete(client, started, put_parts(started, data))
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert s3.list_keys("uploads/") == [] and s3.list_keys("media/") == []
    assert queued(settings) == 0
    assert client.get("/v1/usage", headers=ALICE).json()["bytes_used"] == 0
    assert complete(client, started, []).status_code == 422  # the part list may not be empty
    assert complete(client, started, [{"part_number": 1, "etag": "x"}]).status_code == 404  # gone


def test_wrong_size_and_wrong_parts(client: TestClient, s3: S3Storage, tmp_path: Path) -> None:
    jpeg = save_jpeg(quadrant_image(400, 300), tmp_path / "s.jpg").read_bytes()
    started = start(client, len(jpeg) + 10)
    parts = put_parts(started, jpeg + b"")  # ten bytes short of what was announced
    r = complete(client, started, [{"part_number": 1, "etag": '"0123"'}])
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_request"
    r = complete(client, started, parts)
    assert r.status_code == 422 and r.json()["error"]["code"] == "upload_size_mismatch"
    assert s3.list_keys("uploads/") == []


def test_creation_is_checked(client: TestClient, settings: Settings) -> None:
    r = client.post("/v1/uploads/direct", headers=ALICE,
                    json={"filename": "f", "size": settings.direct_upload_max_bytes + 1})
    assert r.status_code == 413
    r = client.post("/v1/uploads/direct", headers=ALICE,
                    json={"filename": "f", "size": 10, "recipe": {"aspect": "2:7"}})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_recipe"
    r = client.post("/v1/uploads/direct", headers=ALICE, json={"filename": "f", "size": 0})
    assert r.status_code == 422
    assert client.post("/v1/uploads/direct", json={"filename": "f", "size": 10}).status_code == 401
    assert json.loads(client.get("/openapi.json").text)["paths"]["/v1/uploads/direct/{upload_id}/complete"]


def test_creation_with_an_idempotency_key_gives_the_same_upload(client: TestClient, s3: S3Storage,
                                                                tmp_path: Path) -> None:
    data = big_photo(tmp_path)
    key = ALICE | {"Idempotency-Key": "direct-1"}
    body = {"filename": "f.jpg", "size": len(data)}
    first = client.post("/v1/uploads/direct", headers=key, json=body)
    again = client.post("/v1/uploads/direct", headers=key, json=body)
    assert first.status_code == again.status_code == 201
    assert again.headers["idempotent-replayed"] == "true" and again.json()["id"] == first.json()["id"]
    assert len(again.json()["parts"]) == len(first.json()["parts"]) == 2
    assert len([k for k in s3.list_keys("uploads/") if k.endswith("manifest.json")]) == 1
    # The replayed part URLs work: the upload completes as usual.
    r = complete(client, again.json(), put_parts(again.json(), data))
    assert r.status_code == 202, r.text
    other = client.post("/v1/uploads/direct", headers=key, json=body | {"size": len(data) + 1})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
