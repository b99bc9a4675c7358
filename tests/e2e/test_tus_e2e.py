"""Resumable uploads with the real tus client (tuspy) against the API as a real process on embedded defaults:
the connection is cut mid-upload by a proxy, the client reconnects, asks the server's offset and continues
from there (not from zero), and the upload ends as a queued media record."""

from __future__ import annotations

import io
import os
from collections.abc import Iterator
from pathlib import Path

import httpx
import numpy as np
import pytest
from PIL import Image
from tusclient import client as tus

from tests.support.faults import TcpProxy
from tests.support.procs import Proc, media_service, running, wait_http
from tests.support.s3server import free_port

pytestmark = pytest.mark.e2e
HOST = "127.0.0.1"
AUTH = {"Authorization": "Bearer tus-key"}


@pytest.fixture()
def api(tmp_path: Path) -> Iterator[tuple[int, Proc]]:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_")}
    env |= {"MEDIA_DATA_DIR": str(tmp_path / "data"), "MEDIA_PORT": str(port), "MEDIA_API_KEYS": "tus-key=alice",
            "MEDIA_PUBLIC_BASE_URL": f"http://{HOST}:{port}", "MEDIA_LOG_FORMAT": "text"}
    with running("api", media_service("api"), env, tmp_path) as proc:
        wait_http(f"http://{HOST}:{port}/healthz", proc)
        yield port, proc


def noisy_jpeg(path: Path, side: int = 1100) -> bytes:
    rng = np.random.default_rng(7)
    buf = io.BytesIO()
    Image.fromarray(rng.integers(0, 255, (side, side, 3), dtype=np.uint8)).save(buf, "JPEG", quality=95)
    path.write_bytes(buf.getvalue())
    return buf.getvalue()


def test_an_upload_cut_at_60_percent_resumes_from_the_server_offset(api: tuple[int, Proc], tmp_path: Path) -> None:
    port, proc = api
    data = noisy_jpeg(tmp_path / "big.jpg")
    assert len(data) > 1_000_000
    proxy = TcpProxy(HOST, port, drop_after=int(len(data) * 0.6)).start()
    try:
        client = tus.TusClient(f"http://{HOST}:{proxy.port}/v1/uploads", headers=AUTH)
        # One PATCH for the whole file: the cut lands in its body; tuspy then HEADs and PATCHes the rest.
        uploader = client.uploader(str(tmp_path / "big.jpg"), chunk_size=len(data), retries=5, retry_delay=1,
                                   metadata={"filename": "big.jpg", "recipe": '{"aspect": "1:1"}'})
        uploader.upload()
    finally:
        proxy.close()
    assert proxy.drops == 1
    assert len(data) <= proxy.sent < 1.5 * len(data), (proxy.sent, len(data))
    assert uploader.offset == len(data)
    media_id = uploader.request.response_headers["media-id"]
    assert uploader.request.response_headers["location"] == f"/v1/media/{media_id}"
    r = httpx.get(f"http://{HOST}:{port}/v1/media/{media_id}", headers=AUTH)
    assert r.status_code == 200, proc.tail()
    body = r.json()
    assert body["status"] == "queued" and body["kind"] == "image" and body["source"]["bytes"] == len(data)
    head = httpx.head(f"http://{HOST}:{port}{uploader.url.split(str(proxy.port), 1)[1]}",
                      headers=AUTH | {"Tus-Resumable": "1.0.0"})
    assert head.headers["media-id"] == media_id
    assert not list((tmp_path / "data" / "uploads").glob("*.bin"))  # the partial bytes are gone


def test_a_client_that_stops_and_comes_back_continues_with_checksums(api: tuple[int, Proc], tmp_path: Path) -> None:
    port, _ = api
    data = noisy_jpeg(tmp_path / "p.jpg", side=700)
    url = f"http://{HOST}:{port}/v1/uploads"
    first = tus.TusClient(url, headers=AUTH).uploader(str(tmp_path / "p.jpg"), chunk_size=128 * 1024,
                                                      upload_checksum=True, metadata={"filename": "p.jpg"})
    stop_at = int(len(data) * 0.6)
    first.upload(stop_at=stop_at)  # the app is closed here
    assert stop_at <= first.offset < len(data)
    # A new client (a new app session) with the remembered URL: it asks the server where to go on.
    again = tus.TusClient(url, headers=AUTH).uploader(str(tmp_path / "p.jpg"), url=first.url, chunk_size=128 * 1024,
                                                      upload_checksum=True)
    assert again.offset == first.offset
    again.upload()
    media_id = again.request.response_headers["media-id"]
    assert httpx.get(f"http://{HOST}:{port}/v1/media/{media_id}", headers=AUTH).json()["status"] == "queued"
