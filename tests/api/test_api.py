"""The API in-process on embedded defaults (SQLite, local disk, filesystem broker): everything a client
sees before a worker touches the media. The worker path is covered by tests/e2e."""

from __future__ import annotations

import io
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from PIL import Image

from media_service.config import Settings
from tests.support.media import png_bomb, quadrant_image, save_jpeg
from tests.support.packs import write_look_pack, write_music_pack, write_sticker_pack

ALICE = {"Authorization": "Bearer alice-key"}
BOB = {"Authorization": "Bearer bob-key"}


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(
        data_dir=tmp_path / "data",
        api_keys="alice-key=alice,bob-key=bob",
        filters_dirs=[write_look_pack(tmp_path / "f")],
        stickers_dirs=[write_sticker_pack(tmp_path / "s")],
        music_dirs=[write_music_pack(tmp_path / "m")],
        limits={"max_upload_bytes": 3_000_000},
    )


@pytest.fixture()
def photo(tmp_path: Path) -> bytes:
    return save_jpeg(quadrant_image(800, 600), tmp_path / "p.jpg").read_bytes()


def queued_tasks(settings: Settings) -> list[dict[str, object]]:
    folder = settings.broker_folder / "queue"
    return [json.loads(p.read_text()) for p in folder.glob("*.msg")] if folder.exists() else []


def stored_files(settings: Settings) -> list[Path]:
    root = settings.data_dir / "storage"
    return [p for p in root.rglob("*") if p.is_file() and not p.name.endswith(".meta.json")] if root.exists() \
        else []


def test_upload_answers_202_and_queues_the_id(client: TestClient, settings: Settings, photo: bytes) -> None:
    recipe = {"aspect": "3:4", "filter": {"id": "tlooks/warm", "intensity": 0.8},
              "stickers": [{"id": "tstickers/red", "x": 0.5, "y": 0.3, "scale": 0.25, "rotation": -12}]}
    r = client.post("/v1/media", headers=ALICE, files={"file": ("whatever.bin", photo, "text/plain")},
                    data={"recipe": json.dumps(recipe)})
    assert r.status_code == 202, r.text
    body = r.json()
    assert body["kind"] == "image" and body["status"] == "queued" and body["progress"] == 0
    assert body["source"] == {"format": "jpeg", "width": 800, "height": 600, "bytes": len(photo)}
    assert r.headers["location"] == f"/v1/media/{body['id']}"
    tasks = queued_tasks(settings)
    assert len(tasks) == 1
    assert tasks[0]["headers"]["task"] == "media.process_image"  # type: ignore[index]
    assert body["id"] in json.dumps(tasks[0])
    assert len(stored_files(settings)) == 1
    got = client.get(f"/v1/media/{body['id']}", headers=ALICE).json()
    assert got["status"] == "queued" and got["renditions"] == []


def test_auth(client: TestClient, photo: bytes) -> None:
    r = client.post("/v1/media", files={"file": ("p.jpg", photo)})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"
    r = client.get("/v1/media/abc", headers={"Authorization": "Bearer nope"})
    assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_another_owner_gets_404(client: TestClient, photo: bytes) -> None:
    media_id = client.post("/v1/media", headers=ALICE, files={"file": ("p.jpg", photo)}).json()["id"]
    assert client.get(f"/v1/media/{media_id}", headers=BOB).status_code == 404
    assert client.delete(f"/v1/media/{media_id}", headers=BOB).status_code == 404
    assert client.get(f"/v1/media/{media_id}", headers=ALICE).status_code == 200


def test_delete_removes_record_and_objects(client: TestClient, settings: Settings, photo: bytes) -> None:
    media_id = client.post("/v1/media", headers=ALICE, files={"file": ("p.jpg", photo)}).json()["id"]
    assert stored_files(settings)
    assert client.delete(f"/v1/media/{media_id}", headers=ALICE).status_code == 204
    assert client.get(f"/v1/media/{media_id}", headers=ALICE).status_code == 404
    assert stored_files(settings) == []


@pytest.mark.parametrize(
    ("recipe", "field"),
    [
        ('{"aspect": "2:3"}', "aspect"),
        ('{"filter": {"id": "tlooks/nope"}}', "filter.id"),
        ('{"stickers": [{"id": "tstickers/red", "x": 5, "y": 0}]}', "stickers[0].x"),
        ('{"stickers": [{"id": "tstickers/nope", "x": 0.5, "y": 0.5}]}', "stickers[0].id"),
        ("{not json", "recipe"),
    ],
)
def test_bad_recipe_is_422_with_the_field_and_nothing_stored(
        client: TestClient, settings: Settings, photo: bytes, recipe: str, field: str) -> None:
    r = client.post("/v1/media", headers=ALICE, files={"file": ("p.jpg", photo)}, data={"recipe": recipe})
    assert r.status_code == 422
    err = r.json()["error"]
    assert err["field"] == field and err["code"] in ("invalid_recipe", "unknown_pack_item") and err["message"]
    assert stored_files(settings) == [] and queued_tasks(settings) == []


@pytest.mark.parametrize(
    ("payload", "status", "code"),
    [
        (b"", 422, "empty_file"),
        (b"<html><script>alert(1)</script></html>", 415, "unsupported_media_type"),
        (b"%PDF-1.7\n", 415, "unsupported_media_type"),
        (b"II*\0" + b"\0" * 100, 415, "unsupported_media_type"),
        (b"\xff\xd8\xff\xe0" + b"\0" * 20, 422, "corrupt_media"),
    ],
)
def test_bad_files(client: TestClient, settings: Settings, payload: bytes, status: int, code: str) -> None:
    r = client.post("/v1/media", headers=ALICE, files={"file": ("photo.jpg", payload, "image/jpeg")})
    assert r.status_code == status, r.text
    assert r.json()["error"]["code"] == code
    assert stored_files(settings) == []


def test_png_named_jpg_is_accepted_as_png(client: TestClient) -> None:
    buf = io.BytesIO()
    quadrant_image(300, 200).save(buf, "PNG")
    r = client.post("/v1/media", headers=ALICE, files={"file": ("photo.jpg", buf.getvalue(), "image/jpeg")})
    assert r.status_code == 202 and r.json()["source"]["format"] == "png"


def test_pixel_bomb_refused_before_decoding(client: TestClient, settings: Settings, tmp_path: Path) -> None:
    bomb = png_bomb(tmp_path / "bomb.png").read_bytes()
    r = client.post("/v1/media", headers=ALICE, files={"file": ("b.png", bomb)})
    assert r.status_code == 422 and r.json()["error"]["code"] == "image_too_large"
    assert stored_files(settings) == []


def test_too_many_bytes_is_413(client: TestClient, settings: Settings) -> None:
    big = b"\xff\xd8\xff" + b"\0" * 3_200_000
    r = client.post("/v1/media", headers=ALICE, files={"file": ("big.jpg", big)})
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"
    assert stored_files(settings) == []


def test_streamed_body_without_length_is_cut_off(client: TestClient, settings: Settings) -> None:
    def body() -> Iterator[bytes]:
        yield b"--b\r\nContent-Disposition: form-data; name=\"file\"; filename=\"x.jpg\"\r\n\r\n\xff\xd8\xff"
        for _ in range(100):
            yield b"\0" * 100_000
        yield b"\r\n--b--\r\n"

    r = client.post("/v1/media", headers={**ALICE, "Content-Type": "multipart/form-data; boundary=b"},
                    content=body())
    assert r.status_code == 413 and r.json()["error"]["code"] == "file_too_large"


def test_missing_file_field(client: TestClient) -> None:
    r = client.post("/v1/media", headers=ALICE, data={"recipe": "{}"})
    assert r.status_code == 422 and r.json()["error"]["field"] == "file"


def test_mp4_header_without_a_movie_is_corrupt(client: TestClient, settings: Settings) -> None:
    head = (24).to_bytes(4, "big") + b"ftypisom" + b"\0\0\x02\0" + b"isomiso2" + b"\0" * 100
    r = client.post("/v1/media", headers=ALICE, files={"file": ("v.mp4", head)})
    assert r.status_code == 422 and r.json()["error"]["code"] == "corrupt_media"
    assert stored_files(settings) == []


def test_catalogue(client: TestClient) -> None:
    looks = client.get("/v1/filters").json()["items"]
    assert {i["id"] for i in looks} == {"tlooks/warm", "tlooks/identity"}
    assert looks[0]["title"]["en"] and looks[0]["title"]["zh"]
    stickers = [{k: v for k, v in s.items() if k != "preview_url"} for s in client.get("/v1/stickers").json()["items"]]
    assert stickers == [{"id": "tstickers/red", "title": {"en": "Red bar", "zh": "红条"}, "scale": 0.2,
                         "anchor": [0.5, 0.5], "safe_area": None, "tags": [], "width": 200, "height": 100,
                         "animated": False, "pack": "tstickers", "version": "1.0.0"}]


def test_unknown_route_and_method_use_the_error_shape(client: TestClient) -> None:
    r = client.get("/v2/nothing")
    assert r.status_code == 404 and r.json()["error"]["code"] == "not_found"
    r = client.put("/v1/filters")
    assert r.status_code == 405 and r.json()["error"]["code"] == "method_not_allowed"


def test_signed_download_route_refuses_tampering(client: TestClient, settings: Settings) -> None:
    from media_service.storage.signing import signed_url

    url = signed_url("http://testserver", settings.signing_key, "media/x/original", 9_999_999_999)
    path = url.removeprefix("http://testserver")
    assert client.get(path).status_code == 404  # signed, but no such object
    assert client.get(path.replace("sig=", "sig=0")).status_code == 404
    assert client.get("/v1/files/media/x/original?expires=1&sig=00").status_code == 404


def test_health(client: TestClient) -> None:
    assert client.get("/healthz").json() == {"status": "ok"}
    r = client.get("/readyz")
    assert r.status_code == 200, r.text
    assert r.json()["checks"] == {"database": "ok", "storage": "ok", "broker": "ok"}


def test_openapi_documents_the_upload(client: TestClient) -> None:
    spec = client.get("/openapi.json").json()
    body = spec["paths"]["/v1/media"]["post"]["requestBody"]["content"]["multipart/form-data"]["schema"]
    assert set(body["properties"]) == {"file", "recipe"}


def test_image_header_facts_after_orientation(client: TestClient, tmp_path: Path) -> None:
    data = save_jpeg(Image.new("RGB", (640, 480)), tmp_path / "o.jpg", orientation=6).read_bytes()
    src = client.post("/v1/media", headers=ALICE, files={"file": ("o.jpg", data)}).json()["source"]
    assert (src["width"], src["height"]) == (480, 640)


def test_catalogue_previews(client: TestClient) -> None:
    looks = {i["id"]: i for i in client.get("/v1/filters").json()["items"]}
    warm = client.get(looks["tlooks/warm"]["preview_url"].removeprefix("http://127.0.0.1:8000"))
    identity = client.get(looks["tlooks/identity"]["preview_url"].removeprefix("http://127.0.0.1:8000"))
    assert warm.status_code == identity.status_code == 200 and warm.headers["content-type"] == "image/jpeg"
    w = Image.open(io.BytesIO(warm.content)).convert("RGB").getpixel((160, 200))
    i = Image.open(io.BytesIO(identity.content)).convert("RGB").getpixel((160, 200))
    assert w[0] > i[0] + 20 and w[2] < i[2] - 20  # the thumbnail shows the look: warmer than the identity
    sticker = client.get("/v1/stickers").json()["items"][0]
    img = client.get(sticker["preview_url"].removeprefix("http://127.0.0.1:8000"))
    assert img.status_code == 200 and Image.open(io.BytesIO(img.content)).mode == "RGBA"
    track = client.get("/v1/music").json()["items"][0]
    audio = client.get(track["preview_url"].removeprefix("http://127.0.0.1:8000"))
    assert audio.status_code == 200 and audio.headers["content-type"] == "audio/ogg" and audio.content[:4] == b"OggS"
    assert client.get("/v1/filters/tlooks/nope/preview.jpg").status_code == 404
