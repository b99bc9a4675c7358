"""While a video renders, the poster and the lowest rung are usable before the rest (issue 7): the record
lists them under "usable", the growing 480p playlist plays (EVENT, segments signed and fetchable), and at the
end the same playlist ends and the complete set takes over."""

from __future__ import annotations

import json
import re
import subprocess
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.e2e.conftest import Stack
from tests.e2e.test_photo_e2e import ALICE
from tests.support.video import make_video

pytestmark = pytest.mark.e2e


def test_poster_and_480p_are_usable_before_the_ladder(stack: Stack, tmp_path: Path) -> None:
    # Big enough that the pass takes several seconds on two cores (three rungs from 1080×1920, a look).
    src = make_video(tmp_path / "clip.mp4", width=1080, height=1920, seconds=10,
                     video="testsrc2=size=1080x1920:rate=30")
    recipe = {"filter": {"id": "starter/warm"}, "cover": {"time": 0.5}}
    r = httpx.post(f"{stack.base_url}/v1/media", headers=ALICE, files={"file": ("clip.mp4", src.read_bytes())},
                   data={"recipe": json.dumps(recipe)}, timeout=60)
    assert r.status_code == 202, r.text
    media_id = r.json()["id"]
    assert r.json()["usable"] == []
    seen: list[dict[str, Any]] = []
    playlist_text = ""
    deadline = time.monotonic() + 240
    while time.monotonic() < deadline:
        body = httpx.get(f"{stack.base_url}/v1/media/{media_id}", headers=ALICE, timeout=10).json()
        if body["status"] != "processing":
            if body["status"] in ("ready", "failed"):
                break
            time.sleep(0.1)
            continue
        usable = {u["name"]: u for u in body["usable"]}
        if usable:
            seen.append({"progress": body["progress"], "names": sorted(usable)})
        hls = usable.get("480p.hls")
        if hls is not None and not playlist_text:
            playlist = httpx.get(hls["url"], timeout=10)
            assert playlist.status_code == 200 and playlist.headers["cache-control"] == "no-store"
            playlist_text = playlist.text
            assert "#EXT-X-PLAYLIST-TYPE:EVENT" in playlist_text and "#EXT-X-ENDLIST" not in playlist_text
            init = re.search(r'URI="([^"]+)"', playlist_text)
            segment = next(u for u in playlist_text.splitlines() if u.startswith("http"))
            assert init is not None
            data = httpx.get(init.group(1), timeout=10).content + httpx.get(segment, timeout=10).content
            (tmp_path / "early.mp4").write_bytes(data)
            out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries",
                                  "stream=width,height", "-of", "csv=p=0", str(tmp_path / "early.mp4")],
                                 capture_output=True, text=True, check=True).stdout.strip()
            assert out == "480,854"  # the lowest rung, decodable on its own
            poster = httpx.get(usable["poster.jpg"]["url"], timeout=10)
            assert poster.status_code == 200 and poster.content[:2] == b"\xff\xd8"
            early_url = hls["url"]
        time.sleep(0.2)
    assert body["status"] == "ready", body
    assert playlist_text, f"never saw the 480p usable while processing: {seen}"
    assert seen[0]["names"][0].startswith("poster")  # the poster first
    assert any(s["progress"] < 0.9 for s in seen if "480p.hls" in s["names"])  # well before the end
    assert body["usable"] == []  # the complete set is in "renditions" now
    poster = next(x for x in body["renditions"] if x["name"] == "poster.jpg")
    assert poster["bytes"] > 0
    # A player that started early finds the playlist ended, all 5 segments in it.
    ended = httpx.get(early_url, timeout=10)
    assert ended.status_code == 200 and ended.text.rstrip().endswith("#EXT-X-ENDLIST")
    assert len([u for u in ended.text.splitlines() if u.startswith("http")]) == 5
