"""`media-service dev` (the README's first command) on embedded defaults: SQLite, local disk and the
filesystem broker, with the API and a real worker process. No server of any kind is needed."""

from __future__ import annotations

import io
import json
import os
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.support.media import save_jpeg
from tests.support.procs import media_service, running, wait_http, wait_log
from tests.support.s3server import free_port

pytestmark = pytest.mark.e2e


def test_dev_command_processes_a_photo(tmp_path: Path) -> None:
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_")}
    env |= {"MEDIA_DATA_DIR": str(tmp_path / "data"), "MEDIA_PORT": str(port),
            "MEDIA_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    with running("dev", media_service("dev"), env, tmp_path) as dev:
        wait_http(f"http://127.0.0.1:{port}/healthz", dev)
        wait_log(dev, "ready.")
        assert "curl" in dev.tail() and "dev-key" in dev.tail()  # it says how to try it
        photo = save_jpeg(Image.new("RGB", (1600, 1200), (128, 128, 128)), tmp_path / "p.jpg").read_bytes()
        recipe = {"aspect": "1:1", "filter": {"id": "starter/cool"},
                  "stickers": [{"id": "starter/star", "x": 0.5, "y": 0.5}]}
        auth = {"Authorization": "Bearer dev-key"}
        r = httpx.post(f"http://127.0.0.1:{port}/v1/media", headers=auth, files={"file": ("p.jpg", photo)},
                       data={"recipe": json.dumps(recipe)}, timeout=30)
        assert r.status_code == 202, r.text
        url = f"http://127.0.0.1:{port}/v1/media/{r.json()['id']}"
        deadline = time.monotonic() + 60
        body = httpx.get(url, headers=auth).json()
        while body["status"] not in ("ready", "failed") and time.monotonic() < deadline:
            time.sleep(0.2)
            body = httpx.get(url, headers=auth).json()
        assert body["status"] == "ready", (body, dev.tail())
        best = next(x for x in body["renditions"] if x["name"] == "w1080.webp")
        assert best["url"].startswith(f"http://127.0.0.1:{port}/v1/files/")
        got = httpx.get(best["url"])
        assert got.status_code == 200 and got.headers["content-type"] == "image/webp"
        img = Image.open(io.BytesIO(got.content)).convert("RGB")
        assert img.size == (1080, 1080)
        r_, _, b_ = img.getpixel((50, 50))  # type: ignore[misc]
        assert b_ > r_ + 5  # the cool look
        tampered = best["url"].replace("w1080.webp", "w720.webp")
        assert httpx.get(tampered).status_code == 404
    assert (tmp_path / "data" / "media.db").exists()


def test_dev_command_stops_its_children_on_sigterm(tmp_path: Path) -> None:
    import signal

    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_")}
    env |= {"MEDIA_DATA_DIR": str(tmp_path / "data"), "MEDIA_PORT": str(port),
            "MEDIA_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}"}
    with running("dev", media_service("dev"), env, tmp_path) as dev:
        wait_http(f"http://127.0.0.1:{port}/healthz", dev)
        children = [int(p) for p in Path(f"/proc/{dev.proc.pid}/task/{dev.proc.pid}/children").read_text().split()]
        assert len(children) == 3  # the API, a photo worker, a video worker
        dev.proc.send_signal(signal.SIGTERM)
        dev.proc.wait(timeout=40)
        deadline = time.monotonic() + 20
        while any(Path(f"/proc/{c}").exists() and "Z" not in Path(f"/proc/{c}/stat").read_text().split()[2]
                  for c in children) and time.monotonic() < deadline:
            time.sleep(0.2)
        alive = [c for c in children if Path(f"/proc/{c}").exists()]
        assert not alive or all(Path(f"/proc/{c}/stat").read_text().split()[2] == "Z" for c in alive), alive
