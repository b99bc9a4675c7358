"""Upload → real Celery worker on Redis → PostgreSQL record → renditions on the S3 server → download."""

from __future__ import annotations

import io
import json
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import Stack
from tests.support.media import mean_rgb, metadata_markers, save_jpeg

pytestmark = pytest.mark.e2e
ALICE = {"Authorization": "Bearer alice-key"}
BOB = {"Authorization": "Bearer bob-key"}

RECIPE = {"aspect": "3:4", "filter": {"id": "starter/warm", "intensity": 1.0},
          "stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.3, "scale": 0.25, "rotation": 0}]}


def portrait_photo(path: Path) -> Path:
    """Displayed 1500×2000: grey top 60%, blue bottom 40%; stored turned 90° counter-clockwise with EXIF
    orientation 6 (as a phone held upright writes it), GPS, camera make and XMP."""
    shown = Image.new("RGB", (1500, 2000), (128, 128, 128))
    shown.paste((30, 40, 220), (0, 1200, 1500, 2000))
    return save_jpeg(shown.transpose(Image.Transpose.ROTATE_90), path, orientation=6, quality=95)


def upload(stack: Stack, data: bytes, recipe: dict[str, Any] | None = None,
           headers: dict[str, str] = ALICE) -> httpx.Response:
    form = {"recipe": json.dumps(recipe)} if recipe is not None else {}
    return httpx.post(f"{stack.base_url}/v1/media", headers=headers, files={"file": ("IMG_0001.JPG", data)},
                      data=form, timeout=30)


def wait_terminal(stack: Stack, media_id: str, timeout: float = 90) -> tuple[dict[str, Any], list[str]]:
    seen: list[str] = []
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        body = httpx.get(f"{stack.base_url}/v1/media/{media_id}", headers=ALICE, timeout=10).json()
        if not seen or seen[-1] != body["status"]:
            seen.append(body["status"])
        if body["status"] in ("ready", "failed"):
            return body, seen
        time.sleep(0.1)
    raise AssertionError(f"{media_id} not done: {seen}\n{stack.worker.tail()}")


def test_photo_end_to_end(stack: Stack, tmp_path: Path) -> None:
    r = upload(stack, portrait_photo(tmp_path / "p.jpg").read_bytes(), RECIPE)
    assert r.status_code == 202, r.text
    media_id = r.json()["id"]
    assert r.json()["status"] == "queued"

    body, seen = wait_terminal(stack, media_id)
    assert body["status"] == "ready", body
    assert seen[0] in ("queued", "processing") and seen[-1] == "ready"
    assert body["progress"] == 1.0 and body["error"] is None
    assert body["source"]["width"] == 1500 and body["source"]["height"] == 2000
    assert body["source"]["format"] == "jpeg"
    assert len(body["placeholder"]["blurhash"]) == 28
    assert body["placeholder"]["dominant_color"].startswith("#")

    names = {r["name"]: r for r in body["renditions"]}
    assert set(names) == {"w1080.webp", "w1080.jpg", "w720.webp", "w720.jpg", "w360.webp", "w360.jpg"}
    for name, rendition in names.items():
        got = httpx.get(rendition["url"], timeout=10)  # no API key: the URL itself is the permission
        assert got.status_code == 200, (name, got.text[:200])
        assert len(got.content) == rendition["bytes"]
        assert metadata_markers(got.content) == [], name
        img = Image.open(io.BytesIO(got.content))
        assert img.format == ("WEBP" if name.endswith("webp") else "JPEG")
        assert img.size == (rendition["width"], rendition["height"])
        assert img.width * 4 == img.height * 3  # 3:4 portrait, upright
        assert len(img.getexif()) == 0

    img = Image.open(io.BytesIO(httpx.get(names["w1080.webp"]["url"]).content)).convert("RGB")
    assert img.size == (1080, 1440)
    # The look: grey comes out warmer (more red than blue); the bottom stays blue (orientation right).
    r, g, b = mean_rgb(img, (40, 40, 300, 200))
    assert r - b > 20, (r, g, b)
    r, g, b = mean_rgb(img, (100, 1200, 1000, 1400))
    assert b > 150 and r < 100
    # The heart: 25% of 1080 = 270 px wide, centred at (540, 432); its middle is opaque pink-red.
    r, g, b = mean_rgb(img, (520, 412, 560, 452))
    assert r > 200 and g < 110 and b < 140, (r, g, b)
    outside = mean_rgb(img, (540 - 20, 432 - 200, 540 + 20, 432 - 170))
    assert abs(outside[1] - 128) < 12 and outside[0] - outside[2] > 20  # warmed grey, no sticker


def test_another_owner_and_delete(stack: Stack, tmp_path: Path) -> None:
    data = save_jpeg(Image.new("RGB", (640, 480), (90, 120, 60)), tmp_path / "x.jpg").read_bytes()
    media_id = upload(stack, data).json()["id"]
    body, _ = wait_terminal(stack, media_id)
    assert body["status"] == "ready"
    assert httpx.get(f"{stack.base_url}/v1/media/{media_id}", headers=BOB).status_code == 404
    assert httpx.delete(f"{stack.base_url}/v1/media/{media_id}", headers=BOB).status_code == 404
    assert stack.storage.list_keys(f"media/{media_id}/")
    assert httpx.delete(f"{stack.base_url}/v1/media/{media_id}", headers=ALICE).status_code == 204
    assert httpx.get(f"{stack.base_url}/v1/media/{media_id}", headers=ALICE).status_code == 404
    assert stack.storage.list_keys(f"media/{media_id}/") == []


def test_corrupt_photo_fails_with_a_code(stack: Stack, tmp_path: Path) -> None:
    whole = save_jpeg(Image.effect_noise((800, 600), 60).convert("RGB"), tmp_path / "n.jpg").read_bytes()
    r = upload(stack, whole[: len(whole) // 3])  # the header is fine; the scan data stops early
    assert r.status_code == 202, r.text
    body, _ = wait_terminal(stack, r.json()["id"])
    assert body["status"] == "failed"
    assert body["error"]["code"] == "corrupt_media" and body["error"]["message"]
    assert body["renditions"] == []
    assert stack.worker.alive()


def test_many_at_once(stack: Stack, tmp_path: Path) -> None:
    photos = [save_jpeg(Image.new("RGB", (1200, 900), (i * 40, 80, 200 - i * 30)), tmp_path / f"{i}.jpg")
              .read_bytes() for i in range(6)]
    with ThreadPoolExecutor(6) as pool:
        ids = [r.json()["id"] for r in pool.map(lambda d: upload(stack, d, {"aspect": "1:1"}), photos)]
    for media_id in ids:
        body, _ = wait_terminal(stack, media_id)
        assert body["status"] == "ready"
        assert {(r["width"], r["height"]) for r in body["renditions"]} == {(900, 900), (720, 720), (360, 360)}
