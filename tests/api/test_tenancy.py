"""Tenancy and abuse, as a client sees them: hashed keys, per-key rate limits (429 + Retry-After), the
daily quota (bytes and video seconds) and admission control for videos (503 + Retry-After)."""

from __future__ import annotations

import hashlib
import sqlite3
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from fastapi.testclient import TestClient

from media_service.api import create_app
from media_service.config import Settings
from media_service.db import Database, KeyRepo
from tests.support.media import quadrant_image, save_jpeg
from tests.support.packs import write_look_pack, write_music_pack, write_sticker_pack
from tests.support.video import make_video

ALICE = {"Authorization": "Bearer alice-key"}
BOB = {"Authorization": "Bearer bob-key"}


def make_settings(tmp_path: Path, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "data_dir": tmp_path / "data",
        "api_keys": f"alice-key=alice,sha256:{hashlib.sha256(b'bob-key').hexdigest()}=bob",
        "filters_dirs": [write_look_pack(tmp_path / "f")],
        "stickers_dirs": [write_sticker_pack(tmp_path / "s")],
        "music_dirs": [write_music_pack(tmp_path / "m")],
    }
    return Settings(**(base | overrides))


@pytest.fixture()
def photo(tmp_path: Path) -> bytes:
    return save_jpeg(quadrant_image(400, 300), tmp_path / "p.jpg").read_bytes()


@pytest.fixture(scope="module")
def video(tmp_path_factory: pytest.TempPathFactory) -> bytes:
    path = tmp_path_factory.mktemp("v") / "v.mp4"
    return make_video(path, width=160, height=284, seconds=2.0).read_bytes()


def client_for(settings: Settings) -> Iterator[TestClient]:
    with TestClient(create_app(settings)) as c:
        yield c


def stored_originals(settings: Settings) -> list[Path]:
    root = settings.data_dir / "storage"
    return [p for p in root.rglob("original*") if not p.name.endswith(".meta.json")] if root.exists() else []


def upload(c: TestClient, body: bytes, headers: dict[str, str] = ALICE, name: str = "p.jpg") -> Any:
    return c.post("/v1/media", headers=headers, files={"file": (name, body)})


def test_hashed_key_in_config_and_keys_in_the_database(tmp_path: Path) -> None:
    settings = make_settings(tmp_path)
    for c in client_for(settings):
        assert c.get("/v1/usage", headers=BOB).status_code == 200  # configured as sha256:<hex>
        key, info = KeyRepo(Database(settings.database_url)).create("carol", "phone app")
        assert key.startswith("nm_") and len(key) > 40
        carol = {"Authorization": f"Bearer {key}"}
        assert c.get("/v1/usage", headers=carol).status_code == 200
        # Only the hash is stored.
        with sqlite3.connect(settings.data_dir / "media.db") as conn:
            rows = conn.execute("SELECT * FROM api_keys").fetchall()
        assert len(rows) == 1 and hashlib.sha256(key.encode()).hexdigest() in rows[0]
        files = b"".join(p.read_bytes() for p in settings.data_dir.glob("media.db*"))
        assert key.encode() not in files
        KeyRepo(Database(settings.database_url)).revoke(info.id)
        c.app.state.services.keys.ttl = 0  # type: ignore[attr-defined]  # no waiting for the cache
        r = c.get("/v1/usage", headers=carol)
        assert r.status_code == 401 and r.json()["error"]["code"] == "unauthorized"


def test_request_rate_limit_per_key(tmp_path: Path) -> None:
    for c in client_for(make_settings(tmp_path, rate_limit_per_minute=5)):
        codes = [c.get("/v1/usage", headers=ALICE).status_code for _ in range(5)]
        assert codes == [200] * 5
        r = c.get("/v1/usage", headers=ALICE)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited"
        assert 1 <= int(r.headers["retry-after"]) <= 12 and r.json()["error"]["retry_after"] == int(
            r.headers["retry-after"])
        assert c.get("/v1/usage", headers=BOB).status_code == 200  # another key has its own bucket


def test_upload_rate_limit_refuses_before_storing(tmp_path: Path, photo: bytes) -> None:
    settings = make_settings(tmp_path, upload_rate_per_minute=2)
    for c in client_for(settings):
        assert [upload(c, photo).status_code for _ in range(2)] == [202, 202]
        r = upload(c, photo)
        assert r.status_code == 429 and r.json()["error"]["code"] == "rate_limited" and "retry-after" in r.headers
        assert len(stored_originals(settings)) == 2
        assert c.get("/v1/usage", headers=ALICE).status_code == 200  # reads are not uploads


def test_daily_byte_quota(tmp_path: Path, photo: bytes) -> None:
    settings = make_settings(tmp_path, quota_bytes_per_day=len(photo) * 2 + 10)
    for c in client_for(settings):
        assert [upload(c, photo).status_code for _ in range(2)] == [202, 202]
        r = upload(c, photo)
        assert r.status_code == 429, r.text
        error = r.json()["error"]
        assert error["code"] == "quota_exceeded" and 1 <= int(r.headers["retry-after"]) <= 86401
        assert error["quota"]["bytes_used"] == 2 * len(photo)
        assert len(stored_originals(settings)) == 2  # nothing of the refused upload was kept
        usage = c.get("/v1/usage", headers=ALICE).json()
        assert usage["bytes_used"] == 2 * len(photo) and usage["bytes_per_day"] == len(photo) * 2 + 10
        assert upload(c, photo, BOB).status_code == 202  # quotas are per owner


def test_daily_video_seconds_quota(tmp_path: Path, video: bytes) -> None:
    settings = make_settings(tmp_path, quota_video_seconds_per_day=3.0)
    for c in client_for(settings):
        assert upload(c, video, name="v.mp4").status_code == 202
        r = upload(c, video, name="v.mp4")
        assert r.status_code == 429 and r.json()["error"]["code"] == "quota_exceeded"
        assert c.get("/v1/usage", headers=ALICE).json()["video_seconds_used"] == pytest.approx(2.0, abs=0.1)
        # A trim counts only what is rendered.
        r = c.post("/v1/media", headers=ALICE, files={"file": ("v.mp4", video)},
                   data={"recipe": '{"trim": {"start": 0, "end": 0.9}}'})
        assert r.status_code == 202, r.text


def test_failed_enqueue_gives_the_quota_back(tmp_path: Path, photo: bytes) -> None:
    from media_service.errors import BrokerUnavailable

    settings = make_settings(tmp_path)
    for c in client_for(settings):
        queue = c.app.state.services.queue  # type: ignore[attr-defined]

        def broken(media_id: str, kind: str, priority: int = 0) -> None:
            raise BrokerUnavailable()

        queue.enqueue = broken
        r = upload(c, photo)
        assert r.status_code == 503 and r.json()["error"]["code"] == "broker_unavailable"
        assert c.get("/v1/usage", headers=ALICE).json()["bytes_used"] == 0
        assert stored_originals(settings) == []


def test_admission_control_for_videos(tmp_path: Path, photo: bytes, video: bytes) -> None:
    settings = make_settings(tmp_path, max_video_backlog=2)
    for c in client_for(settings):
        assert [upload(c, video, name="v.mp4").status_code for _ in range(2)] == [202, 202]
        r = upload(c, video, BOB, name="v.mp4")
        assert r.status_code == 503, r.text
        assert r.json()["error"]["code"] == "busy" and r.json()["error"]["waiting"] == 2
        assert int(r.headers["retry-after"]) > 0
        assert upload(c, photo, BOB).status_code == 202  # photos are not held behind videos
        assert len(stored_originals(settings)) == 3
        assert c.get("/v1/usage", headers=BOB).json()["video_seconds_used"] == 0
