"""The API's observability in-process on embedded defaults: /metrics moves with requests, the queue gauges
follow the ledger, request ids are echoed or made, /readyz names what is down."""

from __future__ import annotations

import io
import logging
import socket
from datetime import timedelta
from pathlib import Path

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy import update

from media_service import logs
from media_service.config import Settings
from media_service.db import Database, MediaRecord
from media_service.db.models import utcnow
from media_service.storage import LocalStorage, S3Storage
from tests.support.media import quadrant_image, save_jpeg
from tests.support.packs import write_look_pack, write_music_pack, write_sticker_pack

ALICE = {"Authorization": "Bearer alice-key"}


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", api_keys="alice-key=alice",
                    filters_dirs=[write_look_pack(tmp_path / "f")], stickers_dirs=[write_sticker_pack(tmp_path / "s")],
                    music_dirs=[write_music_pack(tmp_path / "m")])


@pytest.fixture()
def photo(tmp_path: Path) -> bytes:
    return save_jpeg(quadrant_image(320, 240), tmp_path / "p.jpg").read_bytes()


def scrape(client: TestClient) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    r = client.get("/metrics")
    assert r.status_code == 200 and r.headers["content-type"].startswith("text/plain")
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def test_http_counters_and_latency_move_with_requests(client: TestClient) -> None:
    before = scrape(client)
    for _ in range(3):
        assert client.get("/v1/filters").status_code == 200
    assert client.get("/v1/media/nope", headers=ALICE).status_code == 404
    assert client.get("/v1/media/nope").status_code == 401
    assert client.get("/no/such/path/at/all").status_code == 404
    after = scrape(client)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("media_http_requests_total", route="/v1/filters", method="GET", status="200") == 3
    # Route templates, never raw paths: a media id never becomes a label value.
    assert delta("media_http_requests_total", route="/v1/media/{media_id}", method="GET", status="404") == 1
    assert delta("media_http_requests_total", route="/v1/media/{media_id}", method="GET", status="401") == 1
    assert delta("media_http_requests_total", route="unmatched", method="GET", status="404") == 1
    assert delta("media_http_request_seconds_count", route="/v1/filters", method="GET") == 3
    assert delta("media_http_request_seconds_sum", route="/v1/filters", method="GET") > 0
    assert not any("nope" in str(key) for key in after)


def test_queue_gauges_follow_the_ledger(client: TestClient, settings: Settings, photo: bytes) -> None:
    samples = scrape(client)
    assert value(samples, "media_queue_waiting", queue="image") == 0
    assert value(samples, "media_queue_oldest_age_seconds", queue="image") == 0
    assert value(samples, "media_queue_stats_up") == 1
    ids = []
    for _ in range(2):
        r = client.post("/v1/media", headers=ALICE, files={"file": ("p.jpg", photo)})
        assert r.status_code == 202, r.text
        ids.append(r.json()["id"])
    # The first one has waited two minutes (as if no worker were running).
    db = Database(settings.database_url)
    with db.session() as s:
        s.execute(update(MediaRecord).where(MediaRecord.id == ids[0])
                  .values(updated_at=utcnow() - timedelta(seconds=120)))
    samples = scrape(client)
    assert value(samples, "media_queue_waiting", queue="image") == 2
    assert value(samples, "media_queue_waiting", queue="video") == 0
    assert 120 <= value(samples, "media_queue_oldest_age_seconds", queue="image") < 180
    assert value(samples, "media_queue_oldest_age_seconds", queue="video") == 0
    # The embedded file-system broker cannot say how long its queue is: no broker series rather than a lie.
    assert not any(name == "media_broker_queue_length" for name, _ in samples)
    # A worker claims one: it no longer waits.
    with db.session() as s:
        s.execute(update(MediaRecord).where(MediaRecord.id == ids[0]).values(status="processing"))
    samples = scrape(client)
    assert value(samples, "media_queue_waiting", queue="image") == 1
    assert value(samples, "media_queue_oldest_age_seconds", queue="image") < 60


def test_storage_errors_are_counted_by_operation_and_code(client: TestClient, photo: bytes,
                                                         monkeypatch: pytest.MonkeyPatch) -> None:
    svc = client.app.state.services  # type: ignore[attr-defined]
    before = value(scrape(client), "media_storage_errors_total", operation="put", code="storage_unavailable")
    for name, val in (("AWS_ACCESS_KEY_ID", "x"), ("AWS_SECRET_ACCESS_KEY", "x"), ("AWS_DEFAULT_REGION", "us-east-1")):
        monkeypatch.setenv(name, val)
    with socket.socket() as sock:  # a port nobody listens on: the object store is down
        sock.bind(("127.0.0.1", 0))
        dead = sock.getsockname()[1]
    svc.storage.inner = S3Storage("dead", "p", endpoint_url=f"http://127.0.0.1:{dead}")
    r = client.post("/v1/media", headers=ALICE, files={"file": ("p.jpg", photo)})
    assert r.status_code == 503 and r.json()["error"]["code"] == "storage_unavailable"
    after = value(scrape(client), "media_storage_errors_total", operation="put", code="storage_unavailable")
    assert after - before == 1


def test_request_id_is_echoed_or_made_and_on_every_line(client: TestClient) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    access = logging.getLogger("media_service.api.access")
    access.addHandler(handler)
    old_level = access.level
    access.setLevel(logging.INFO)
    try:
        r = client.get("/healthz", headers={"X-Request-ID": "req-abc.123"})
        made = client.get("/healthz").headers["x-request-id"]
        hostile = client.get("/healthz", headers={"X-Request-ID": "bad id\twith spaces"}).headers["x-request-id"]
    finally:
        access.removeHandler(handler)
        access.setLevel(old_level)
    assert r.headers["x-request-id"] == "req-abc.123"
    assert len(made) == 32 and made != "req-abc.123"
    assert hostile != "bad id\twith spaces" and len(hostile) == 32
    import json

    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [line["request_id"] for line in lines] == ["req-abc.123", made, hostile]
    assert lines[0]["logger"] == "media_service.api.access" and lines[0]["message"].startswith("GET /healthz 200")


def test_readyz_names_what_is_down(client: TestClient, tmp_path: Path) -> None:
    assert client.get("/readyz").status_code == 200
    svc = client.app.state.services  # type: ignore[attr-defined]
    healthy_db = svc.db
    svc.db = Database(f"sqlite:///{tmp_path / 'no-such-dir' / 'x.db'}")  # cannot be opened
    r = client.get("/readyz")
    assert r.status_code == 503
    assert r.json() == {"status": "unavailable",
                        "checks": {"database": "database_unavailable", "storage": "ok", "broker": "ok"}}
    svc.db = healthy_db
    blocker = tmp_path / "blocker"
    blocker.write_text("x")
    svc.storage.inner = LocalStorage(blocker / "store", public_base_url="http://x", signing_secret=b"s")
    r = client.get("/readyz")
    assert r.status_code == 503 and r.json()["checks"]["storage"] == "storage_unavailable"
    assert client.get("/healthz").status_code == 200  # alive all along: only readiness depends on others
