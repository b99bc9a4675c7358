"""Choosing a video's cover through the real stack: candidates from the video pass, then PUT /cover, which
cuts a new poster from one HLS segment on the worker (no re-encode) while the video keeps serving."""

from __future__ import annotations

import io
import json
import time
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from media_service.client import MediaClient
from tests.e2e.conftest import Stack
from tests.e2e.test_photo_e2e import ALICE, BOB, portrait_photo, wait_terminal
from tests.support.video import make_video

pytestmark = pytest.mark.e2e


def image_at(url: str) -> np.ndarray[Any, Any]:
    return np.asarray(Image.open(io.BytesIO(httpx.get(url, timeout=10).content)).convert("RGB")).astype(float)


def test_cover_candidates_and_choosing_one(stack: Stack, tmp_path: Path) -> None:
    src = make_video(tmp_path / "clip.mp4", width=540, height=960, seconds=4,
                     video="testsrc2=size=540x960:rate=30")
    recipe = {"filter": {"id": "starter/warm"}, "cover": {"time": 0.5},
              "stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.3, "scale": 0.3}]}
    r = httpx.post(f"{stack.base_url}/v1/media", headers=ALICE, files={"file": ("clip.mp4", src.read_bytes())},
                   data={"recipe": json.dumps(recipe)}, timeout=60)
    assert r.status_code == 202, r.text
    media_id = r.json()["id"]
    body, _ = wait_terminal(stack, media_id, timeout=180)
    assert body["status"] == "ready", body
    assert body["cover"] == {"time": 0.5, "poster_time": 0.5, "pending": False}
    assert not any(x["name"].startswith("cover-") for x in body["renditions"])  # listed by /covers only
    old_poster = next(x for x in body["renditions"] if x["name"] == "poster.jpg")

    client = MediaClient(stack.base_url, "alice-key")
    items = client.covers(media_id)
    assert len(items) >= 3
    assert [i["score"] for i in items] == sorted((i["score"] for i in items), reverse=True)
    assert all(0 <= i["time"] < 4 and set(i["scores"]) == {"sharpness", "exposure", "faces", "cut_distance"}
               for i in items)
    pick = next(i for i in items if abs(i["time"] - 0.5) > 1.0)
    thumb = image_at(pick["url"])
    assert thumb.shape[:2] == (pick["height"], pick["width"])
    assert len(client.covers(media_id, n=2)) == 2

    chosen = client.choose_cover(media_id, candidate=pick["index"])
    assert chosen.status == "ready"  # it keeps serving meanwhile
    assert chosen.cover is not None and chosen.cover["time"] == pick["time"]
    deadline = time.monotonic() + 60
    while True:
        media = client.get(media_id)
        now = media.raw
        if media.cover is not None and not media.cover["pending"]:
            break
        assert time.monotonic() < deadline, stack.worker.tail()
        time.sleep(0.2)
    client.close()
    assert now["cover"]["poster_time"] == pick["time"] and now["version"] == body["version"]
    poster = next(x for x in now["renditions"] if x["name"] == "poster.jpg")
    assert poster["url"].split("?")[0] != old_poster["url"].split("?")[0]
    new = image_at(poster["url"])
    assert new.shape[:2] == (960, 540)
    # The new poster is the candidate's frame (look and sticker on), at full size; not the old one.
    small = np.asarray(Image.fromarray(new.astype(np.uint8)).resize((pick["width"], pick["height"]),
                                                                   Image.Resampling.BOX)).astype(float)
    assert np.abs(small - thumb).mean() < 6
    assert httpx.get(old_poster["url"], timeout=10).status_code != 200  # the replaced poster's object is gone
    r_, g_, _ = Image.fromarray(new.astype(np.uint8)).getpixel((270, 288))  # type: ignore[misc]
    assert r_ > 200 and g_ < 110  # the heart

    # Any time works too; out of range, both or neither, and other people's media are refused.
    assert httpx.put(f"{stack.base_url}/v1/media/{media_id}/cover", headers=ALICE, json={"time": 9.0}
                     ).json()["error"]["code"] == "invalid_request"
    assert httpx.put(f"{stack.base_url}/v1/media/{media_id}/cover", headers=ALICE, json={}).status_code == 422
    assert httpx.put(f"{stack.base_url}/v1/media/{media_id}/cover", headers=ALICE,
                     json={"time": 1.0, "candidate": 0}).status_code == 422
    assert httpx.put(f"{stack.base_url}/v1/media/{media_id}/cover", headers=BOB, json={"time": 1.0}
                     ).status_code == 404
    assert httpx.get(f"{stack.base_url}/v1/media/{media_id}/covers", headers=BOB).status_code == 404


def test_a_photo_has_no_cover_candidates(stack: Stack, tmp_path: Path) -> None:
    photo = portrait_photo(tmp_path / "p.jpg")
    r = httpx.post(f"{stack.base_url}/v1/media", headers=ALICE, files={"file": ("p.jpg", photo.read_bytes())},
                   timeout=30)
    media_id = r.json()["id"]
    got = httpx.get(f"{stack.base_url}/v1/media/{media_id}/covers", headers=ALICE, timeout=10)
    assert got.status_code == 422 and got.json()["error"]["code"] == "invalid_request"
