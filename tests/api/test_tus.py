"""Resumable uploads (tus 1.0) at the HTTP level, in-process on embedded defaults: creation, offsets,
checksums, termination, expiry, and the hand-over to the POST /v1/media acceptance path. The real tus client
over a connection that drops mid-upload is in tests/e2e/test_tus_e2e.py."""

from __future__ import annotations

import base64
import hashlib
import json
import time
from pathlib import Path

import httpx
import pytest
from fastapi.testclient import TestClient

from media_service.api import create_app
from media_service.config import Settings
from tests.support.media import quadrant_image, save_jpeg
from tests.support.packs import write_look_pack, write_sticker_pack

ALICE = {"Authorization": "Bearer alice-key", "Tus-Resumable": "1.0.0"}
BOB = {"Authorization": "Bearer bob-key", "Tus-Resumable": "1.0.0"}
OCTETS = {"Content-Type": "application/offset+octet-stream"}


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", api_keys="alice-key=alice,bob-key=bob",
                    filters_dirs=[write_look_pack(tmp_path / "f")], stickers_dirs=[write_sticker_pack(tmp_path / "s")],
                    music_dirs=[], limits={"max_upload_bytes": 3_000_000})


@pytest.fixture()
def photo(tmp_path: Path) -> bytes:
    return save_jpeg(quadrant_image(800, 600), tmp_path / "p.jpg").read_bytes()


def b64(text: str) -> str:
    return base64.b64encode(text.encode()).decode()


def create(c: TestClient, length: int, metadata: str | None = None, headers: dict[str, str] = ALICE) -> str:
    h = dict(headers) | {"Upload-Length": str(length)} | ({"Upload-Metadata": metadata} if metadata else {})
    r = c.post("/v1/uploads", headers=h)
    assert r.status_code == 201, r.text
    assert r.headers["tus-resumable"] == "1.0.0" and "upload-expires" in r.headers
    location: str = r.headers["location"]
    assert location.startswith("/v1/uploads/")
    return location


def patch(c: TestClient, url: str, offset: int, data: bytes, extra: dict[str, str] | None = None,
          headers: dict[str, str] = ALICE) -> httpx.Response:
    return c.patch(url, headers=dict(headers) | OCTETS | {"Upload-Offset": str(offset)} | (extra or {}),
                   content=data)


def offset_of(c: TestClient, url: str) -> int:
    r = c.head(url, headers=ALICE)
    assert r.status_code == 200, r.status_code
    return int(r.headers["upload-offset"])


def sha1(data: bytes) -> str:
    return "sha1 " + base64.b64encode(hashlib.sha1(data).digest()).decode()


def queued(settings: Settings) -> int:
    folder = settings.broker_folder / "queue"
    return len(list(folder.glob("*.msg"))) if folder.exists() else 0


def upload_files(settings: Settings) -> list[str]:
    root = settings.data_dir / "uploads"
    return sorted(p.name for p in root.iterdir()) if root.exists() else []


def stored(settings: Settings) -> list[Path]:
    root = settings.data_dir / "storage"
    return [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".meta.json")] if root.exists() else []


def test_options_advertises_the_protocol(client: TestClient, settings: Settings) -> None:
    r = client.options("/v1/uploads")
    assert r.status_code == 204
    assert r.headers["tus-version"] == "1.0.0" and r.headers["tus-resumable"] == "1.0.0"
    assert set(r.headers["tus-extension"].split(",")) == {"creation", "termination", "expiration", "checksum"}
    assert int(r.headers["tus-max-size"]) == settings.limits.max_upload_bytes
    assert "sha1" in r.headers["tus-checksum-algorithm"].split(",")


def test_upload_in_chunks_becomes_a_queued_media(client: TestClient, settings: Settings, photo: bytes) -> None:
    meta = f"filename {b64('p.jpg')},recipe {b64(json.dumps({'aspect': '1:1'}))}"
    url = create(client, len(photo), meta)
    assert offset_of(client, url) == 0
    head = client.head(url, headers=ALICE)
    assert head.headers["upload-length"] == str(len(photo)) and head.headers["cache-control"] == "no-store"
    assert "filename" in head.headers["upload-metadata"]
    half = len(photo) // 2
    r = patch(client, url, 0, photo[:half], {"Upload-Checksum": sha1(photo[:half])})
    assert r.status_code == 204 and r.headers["upload-offset"] == str(half) and "media-id" not in r.headers
    assert offset_of(client, url) == half
    r = patch(client, url, half, photo[half:], {"Upload-Checksum": sha1(photo[half:])})
    assert r.status_code == 204, r.text
    media_id = r.headers["media-id"]
    assert r.headers["location"] == f"/v1/media/{media_id}" and r.headers["upload-offset"] == str(len(photo))
    media = client.get(f"/v1/media/{media_id}", headers=ALICE).json()
    assert media["status"] == "queued" and media["source"]["bytes"] == len(photo)
    record = client.app.state.services.repo.get(media_id)  # type: ignore[attr-defined]
    assert record.recipe["aspect"] == "1:1"  # the recipe rode in Upload-Metadata
    assert queued(settings) == 1
    # Afterwards HEAD still names the media; the partial bytes are gone.
    again = client.head(url, headers=ALICE)
    assert again.headers["media-id"] == media_id and again.headers["upload-offset"] == str(len(photo))
    assert not any(n.endswith(".bin") for n in upload_files(settings))
    # An empty PATCH at the end is harmless and creates nothing new.
    r = patch(client, url, len(photo), b"")
    assert r.status_code == 204 and r.headers["media-id"] == media_id and queued(settings) == 1


def test_wrong_offset_is_409(client: TestClient, photo: bytes) -> None:
    url = create(client, len(photo))
    assert patch(client, url, 0, photo[:100]).status_code == 204
    r = patch(client, url, 50, photo[50:200])
    assert r.status_code == 409 and r.json()["error"]["code"] == "upload_offset_mismatch"
    assert r.json()["error"]["upload_offset"] == 100 and r.headers["tus-resumable"] == "1.0.0"
    assert offset_of(client, url) == 100


def test_checksum_mismatch_is_460_and_the_chunk_is_dropped(client: TestClient, photo: bytes) -> None:
    url = create(client, len(photo))
    r = patch(client, url, 0, photo[:1000], {"Upload-Checksum": sha1(b"something else")})
    assert r.status_code == 460 and r.json()["error"]["code"] == "checksum_mismatch"
    assert offset_of(client, url) == 0
    r = patch(client, url, 0, photo[:1000], {"Upload-Checksum": "crc32 AAAA"})
    assert r.status_code == 400 and r.json()["error"]["code"] == "bad_request"
    sha256 = "sha256 " + base64.b64encode(hashlib.sha256(photo[:1000]).digest()).decode()
    assert patch(client, url, 0, photo[:1000], {"Upload-Checksum": sha256}).status_code == 204


def test_protocol_errors(client: TestClient, settings: Settings, photo: bytes) -> None:
    url = create(client, len(photo))
    r = client.patch(url, headers=ALICE | {"Upload-Offset": "0", "Content-Type": "application/octet-stream"},
                     content=photo[:10])
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    r = patch(client, url, 0, photo[:10], headers={"Authorization": "Bearer alice-key"})  # no Tus-Resumable
    assert r.status_code == 412 and r.headers["tus-version"] == "1.0.0"
    assert r.json()["error"]["code"] == "tus_version_unsupported"
    r = client.patch(url, headers=ALICE | OCTETS, content=b"x")  # no Upload-Offset
    assert r.status_code == 400
    r = client.post("/v1/uploads", headers=ALICE)  # no Upload-Length
    assert r.status_code == 400 and r.json()["error"]["field"] == "upload-length"
    r = client.post("/v1/uploads", headers=ALICE | {"Upload-Length": str(settings.limits.max_upload_bytes + 1)})
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    r = client.post("/v1/uploads", headers=ALICE | {"Upload-Length": "0"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "empty_file"
    r = client.post("/v1/uploads", headers=ALICE | {"Upload-Length": "10", "Upload-Metadata": "recipe !!!"})
    assert r.status_code == 400
    bad = b64(json.dumps({"aspect": "7:1"}))
    r = client.post("/v1/uploads", headers=ALICE | {"Upload-Length": "10", "Upload-Metadata": f"recipe {bad}"})
    assert r.status_code == 422 and r.json()["error"]["code"] == "invalid_recipe"
    # More bytes than Upload-Length: 413, and nothing of that chunk is kept.
    small = create(client, 100)
    r = patch(client, small, 0, b"x" * 150)
    assert r.status_code == 413 and offset_of(client, small) == 0
    assert client.post("/v1/uploads", headers={"Tus-Resumable": "1.0.0", "Upload-Length": "1"}).status_code == 401


def test_uploads_belong_to_their_owner(client: TestClient, photo: bytes) -> None:
    url = create(client, len(photo))
    assert client.head(url, headers=BOB).status_code == 404
    assert patch(client, url, 0, photo[:10], headers=BOB).status_code == 404
    assert client.delete(url, headers=BOB).status_code == 404
    assert offset_of(client, url) == 0
    assert client.head("/v1/uploads/" + "0" * 32, headers=ALICE).status_code == 404
    assert client.head("/v1/uploads/../../etc", headers=ALICE).status_code == 404


def test_termination_removes_the_bytes(client: TestClient, settings: Settings, photo: bytes) -> None:
    url = create(client, len(photo))
    assert patch(client, url, 0, photo[:500]).status_code == 204
    assert upload_files(settings)
    r = client.delete(url, headers=ALICE)
    assert r.status_code == 204
    assert client.head(url, headers=ALICE).status_code == 404
    assert [n for n in upload_files(settings) if not n.endswith(".lock")] == []


def test_a_refused_file_is_reported_on_the_last_patch_and_nothing_remains(
        client: TestClient, settings: Settings) -> None:
    body = b"<html><body>not a photo</body></html>" * 10
    url = create(client, len(body))
    assert patch(client, url, 0, body[:100]).status_code == 204
    r = patch(client, url, 100, body[100:])
    assert r.status_code == 415 and r.json()["error"]["code"] == "unsupported_media_type"
    assert client.head(url, headers=ALICE).status_code == 404
    assert not any(n.endswith((".bin", ".json")) for n in upload_files(settings))
    assert stored(settings) == [] and queued(settings) == 0
    assert client.get("/v1/usage", headers=ALICE).json()["bytes_used"] == 0


def _expire(settings: Settings, url: str) -> None:
    info = settings.data_dir / "uploads" / f"{url.rsplit('/', 1)[1]}.json"
    state = json.loads(info.read_text())
    state["expires"] = time.time() - 1
    info.write_text(json.dumps(state))


def test_expired_uploads_are_gone_and_swept(client: TestClient, settings: Settings, photo: bytes) -> None:
    first, second, third = (create(client, len(photo)) for _ in range(3))
    for url in (first, second, third):
        assert patch(client, url, 0, photo[:1000]).status_code == 204
    head = client.head(first, headers=ALICE)
    expires = head.headers["upload-expires"]
    assert expires.endswith("GMT")
    _expire(settings, first)
    r = patch(client, first, 1000, photo[1000:2000])
    assert r.status_code == 410 and r.json()["error"]["code"] == "upload_expired"
    assert client.head(first, headers=ALICE).status_code == 404
    # Nobody asks about the second one again: the next creation sweeps it.
    _expire(settings, second)
    create(client, 10)
    assert client.head(second, headers=ALICE).status_code == 404
    names = upload_files(settings)
    for gone in (first, second):
        assert not any(n.startswith(gone.rsplit("/", 1)[1]) for n in names)
    # And an API that starts sweeps too.
    _expire(settings, third)
    create_app(settings)
    assert not any(n.startswith(third.rsplit("/", 1)[1]) for n in upload_files(settings))


def test_expiry_is_a_setting(tmp_path: Path) -> None:
    assert Settings(data_dir=tmp_path).upload_expiry_seconds == 24 * 3600
    settings = Settings(data_dir=tmp_path / "d", api_keys="alice-key=alice", upload_expiry_seconds=60,
                        filters_dirs=[], stickers_dirs=[], music_dirs=[])
    with TestClient(create_app(settings)) as c:
        r = c.post("/v1/uploads", headers=ALICE | {"Upload-Length": "10"})
        from email.utils import parsedate_to_datetime

        left = parsedate_to_datetime(r.headers["upload-expires"]).timestamp() - time.time()
        assert 50 < left <= 61


def test_local_storage_refuses_direct_uploads(client: TestClient) -> None:
    r = client.post("/v1/uploads/direct", headers=ALICE, json={"filename": "v.mp4", "size": 10_000_000})
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_supported"
    r = client.post("/v1/uploads/direct/" + "a" * 32 + "/complete", headers=ALICE,
                    json={"parts": [{"part_number": 1, "etag": "x"}]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "not_supported"


def test_creation_with_an_idempotency_key_names_the_same_upload(client: TestClient, settings: Settings,
                                                                 photo: bytes) -> None:
    key = {"Idempotency-Key": "tus-create-1"}
    first = create(client, len(photo), f"filename {b64('p.jpg')}", ALICE | key)
    patch(client, first, 0, photo[:1000])
    # The answer was lost; the client creates again with the same key: the same upload, at its offset.
    again = client.post("/v1/uploads", headers=ALICE | key | {"Upload-Length": str(len(photo)),
                                                               "Upload-Metadata": f"filename {b64('p.jpg')}"})
    assert again.status_code == 201 and again.headers["location"] == first
    assert again.headers["idempotent-replayed"] == "true" and again.headers["upload-offset"] == "1000"
    assert len(list((settings.data_dir / "uploads").glob("*.bin"))) == 1
    other = client.post("/v1/uploads", headers=ALICE | key | {"Upload-Length": str(len(photo) + 1)})
    assert other.status_code == 422 and other.json()["error"]["code"] == "idempotency_key_reused"
    # Keys are per owner: Bob's same key is his own upload.
    bobs = create(client, len(photo), None, BOB | key)
    assert bobs != first


def test_browser_clients_on_other_origins_can_speak_tus(tmp_path: Path, photo: bytes) -> None:
    settings = Settings(data_dir=tmp_path / "data", api_keys="alice-key=alice", music_dirs=[],
                        cors_origins="https://app.example, https://m.example/")  # type: ignore[arg-type]
    with TestClient(create_app(settings)) as c:
        pre = c.options("/v1/uploads", headers={"Origin": "https://m.example", "Access-Control-Request-Method": "POST",
                                                "Access-Control-Request-Headers": "authorization,tus-resumable,"
                                                "upload-length,upload-metadata,idempotency-key"})
        assert pre.status_code == 200 and pre.headers["access-control-allow-origin"] == "https://m.example"
        allowed = pre.headers["access-control-allow-headers"].lower()
        assert all(h in allowed for h in ("tus-resumable", "upload-length", "upload-metadata", "idempotency-key"))
        r = c.post("/v1/uploads", headers=ALICE | {"Origin": "https://app.example", "Upload-Length": str(len(photo))})
        assert r.status_code == 201
        exposed = r.headers["access-control-expose-headers"].lower()
        assert all(h in exposed for h in ("location", "upload-offset", "upload-expires", "tus-resumable"))
        stranger = c.options("/v1/uploads", headers={"Origin": "https://evil.example",
                                                     "Access-Control-Request-Method": "POST"})
        assert "access-control-allow-origin" not in stranger.headers
    with TestClient(create_app(Settings(data_dir=tmp_path / "d2", music_dirs=[]))) as c:  # off by default
        assert "access-control-allow-origin" not in c.get("/healthz", headers={"Origin": "https://app.example"}).headers
