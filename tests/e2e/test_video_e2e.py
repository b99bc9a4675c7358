"""A video note through the real stack: upload → video queue → worker → MP4s, HLS, poster on the S3 server."""

from __future__ import annotations

import io
import json
import re
import subprocess
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import Stack
from tests.e2e.test_photo_e2e import ALICE, BOB, wait_terminal
from tests.support.video import FFMPEG, make_video, probe, stream

pytestmark = pytest.mark.e2e


def test_video_note_end_to_end(stack: Stack, tmp_path: Path) -> None:
    src = make_video(tmp_path / "clip.mp4", width=540, height=960, seconds=5,
                     video="testsrc2=size=540x960:rate=30", rotate=None)
    recipe = {"aspect": "9:16", "trim": {"start": 0.5, "end": 4.5}, "filter": {"id": "starter/warm"},
              "stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.3, "scale": 0.3, "start": 1, "end": 3}],
              "music": {"id": "tmusic/tone", "volume": 0.7, "original_volume": 0.5, "duck": True,
                        "fade_out": 1.0},
              "cover": {"time": 1.5}}
    r = httpx.post(f"{stack.base_url}/v1/media", headers=ALICE, files={"file": ("clip.mov", src.read_bytes())},
                   data={"recipe": json.dumps(recipe)}, timeout=60)
    assert r.status_code == 202, r.text
    created = r.json()
    assert created["kind"] == "video" and created["source"]["duration"] == 5.0
    body, _ = wait_terminal(stack, created["id"], timeout=180)
    assert body["status"] == "ready", body
    names = {x["name"]: x for x in body["renditions"]}
    assert set(names) == {"540p.mp4", "480p.mp4", "hls", "poster.webp", "poster.jpg", "preview.webp"}
    mp4 = names["480p.mp4"]
    assert (mp4["width"], mp4["height"]) == (480, 854) and abs(mp4["duration"] - 4.0) < 0.05 and mp4["bitrate"] > 0
    data = httpx.get(mp4["url"], timeout=30).content
    (tmp_path / "480p.mp4").write_bytes(data)
    info = probe(tmp_path / "480p.mp4")
    assert stream(info, "audio") is not None and abs(float(info["format"]["duration"]) - 4.0) < 0.05
    poster = Image.open(io.BytesIO(httpx.get(names["poster.jpg"]["url"]).content))
    assert poster.size == (540, 960)
    r_, g_, _ = poster.convert("RGB").getpixel((270, 288))  # type: ignore[misc]
    assert r_ > 200 and g_ < 110  # the heart is on the poster at 1.5 s

    # HLS through signed playlists: master → variant → init + segments, all fetched without an API key.
    master_url = names["hls"]["url"]
    master = httpx.get(master_url, timeout=10)
    assert master.status_code == 200 and master.headers["content-type"].startswith("application/vnd.apple.mpegurl")
    variant_urls = [line for line in master.text.splitlines() if line.startswith("http")]
    assert len(variant_urls) == 2 and "BANDWIDTH=" in master.text and 'CODECS="avc1.' in master.text
    playlist = httpx.get(variant_urls[-1], timeout=10).text
    init = re.search(r'URI="([^"]+)"', playlist)
    assert init is not None
    parts = [httpx.get(init.group(1), timeout=10).content]
    parts += [httpx.get(u, timeout=10).content for u in playlist.splitlines() if u.startswith("http")]
    assert all(parts)
    joined = tmp_path / "joined.mp4"
    joined.write_bytes(b"".join(parts))
    decoded = subprocess.run([*FFMPEG, "-i", str(joined), "-f", "null", "-"], capture_output=True, timeout=60)
    assert decoded.returncode == 0

    # The playlist link is the permission: tampering or another media's token is refused.
    assert httpx.get(master_url.replace("sig=", "sig=00")).status_code == 404
    assert httpx.get(f"{stack.base_url}/v1/media/{created['id']}", headers=BOB).status_code == 404
    assert httpx.get(f"{stack.base_url}/v1/music").json()["items"][0]["id"] == "tmusic/tone"


def test_long_video_without_trim_is_refused(stack: Stack, tmp_path: Path) -> None:
    src = make_video(tmp_path / "long.mp4", width=160, height=120, seconds=61, audio=None,
                     video="color=c=gray:s=160x120:r=5")
    r = httpx.post(f"{stack.base_url}/v1/media", headers=ALICE, files={"file": ("long.mp4", src.read_bytes())},
                   timeout=60)
    assert r.status_code == 422 and r.json()["error"]["code"] == "video_too_long"
    assert r.json()["error"]["field"] == "trim"
    r = httpx.post(f"{stack.base_url}/v1/media", headers=ALICE, files={"file": ("long.mp4", src.read_bytes())},
                   data={"recipe": json.dumps({"trim": {"start": 30, "end": 40}})}, timeout=60)
    assert r.status_code == 202
    body, _ = wait_terminal(stack, r.json()["id"], timeout=120)
    assert body["status"] == "ready"
    assert abs(next(x for x in body["renditions"] if x["name"] == "120p.mp4")["duration"] - 10.0) < 0.25
