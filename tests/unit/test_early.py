"""Early renditions of a video in progress (media_service/early.py), on a work folder that grows the way
ffmpeg writes it: the poster once it decodes, each HLS segment of the lowest rung once the next one is open,
a growing EVENT playlist, and its end with ffmpeg's own durations."""

from __future__ import annotations

from pathlib import Path

import pytest
from PIL import Image

from media_service.db import Database, MediaRecord, MediaRepo, Status
from media_service.early import EarlyPublisher, event_playlist
from media_service.storage import LocalStorage


@pytest.fixture()
def repo(tmp_path: Path) -> MediaRepo:
    db = Database(f"sqlite:///{tmp_path / 'media.db'}")
    db.create_all()
    repo = MediaRepo(db)
    repo.create(MediaRecord(id="v1", owner="o", kind="video", status=Status.QUEUED.value, progress=0.0, recipe={},
                            source={}, renditions=[], original_key="media/v1/original", original_bytes=1,
                            original_format="mp4", attempts=0))
    return repo


def test_event_playlist() -> None:
    text = event_playlist([("seg_000.m4s", 2.0), ("seg_001.m4s", 1.4)], ended=True)
    assert "#EXT-X-PLAYLIST-TYPE:EVENT" in text and "#EXT-X-TARGETDURATION:2" in text
    assert text.splitlines()[-5:] == ["#EXTINF:2.000000,", "seg_000.m4s", "#EXTINF:1.400000,", "seg_001.m4s",
                                      "#EXT-X-ENDLIST"]
    assert "ENDLIST" not in event_playlist([("seg_000.m4s", 2.0)])


def test_poster_then_lowest_rung_then_the_end(tmp_path: Path, repo: MediaRepo) -> None:
    storage = LocalStorage(tmp_path / "storage", public_base_url="http://x", signing_secret=b"s")
    work = tmp_path / "work"
    (work / "hls" / "720p").mkdir(parents=True)
    low = work / "hls" / "480p"
    low.mkdir()
    attempt = repo.claim("v1", 3).attempt
    early = EarlyPublisher(repo, storage, "v1", attempt, "v1-abc", "media/v1/v1-abc/", work)

    early.poll()
    assert repo.partial("v1") is None  # nothing yet
    (work / "poster.png").write_bytes(b"\x89PNG\r\n\x1a\n half written")
    early.poll()
    assert repo.partial("v1") is None  # a poster still being written is not taken
    Image.new("RGB", (48, 64), (200, 30, 30)).save(work / "poster.png")
    (low / "init.mp4").write_bytes(b"init")
    (low / "seg_000.m4s").write_bytes(b"0" * 10)  # open: not finished until seg_001 exists
    (work / "hls" / "720p" / "seg_000.m4s").write_bytes(b"x")
    early.poll()
    partial = repo.partial("v1")
    assert partial is not None and [r["name"] for r in partial.renditions] == ["poster.webp", "poster.jpg"]
    assert storage.stat("media/v1/v1-abc/poster.webp") is not None
    (low / "seg_001.m4s").write_bytes(b"1" * 10)
    (low / "seg_002.m4s").write_bytes(b"2")
    early.poll()
    partial = repo.partial("v1")
    assert partial is not None
    hls = next(r for r in partial.renditions if r["name"] == "480p.hls")
    assert hls["seconds"] == 4.0 and not hls["ended"] and hls["playlist"] == "hls/480p/early.m3u8"
    text = b"".join(storage.iter_bytes("media/v1/v1-abc/hls/480p/early.m3u8")).decode()
    assert "seg_000.m4s" in text and "seg_001.m4s" in text and "seg_002" not in text and "ENDLIST" not in text
    assert sorted(k.rsplit("/", 1)[1] for k in storage.list_keys("media/v1/v1-abc/hls/480p/")) == [
        "early.m3u8", "init.mp4", "seg_000.m4s", "seg_001.m4s"]

    # ffmpeg is done: its own playlist gives the last segment and the real durations.
    (low / "seg_002.m4s").write_bytes(b"2" * 7)
    (low / "index.m3u8").write_text(
        "#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000000,\nseg_000.m4s\n#EXTINF:2.000000,\nseg_001.m4s\n"
        "#EXTINF:0.733000,\nseg_002.m4s\n#EXT-X-ENDLIST\n")
    early.finish()
    text = b"".join(storage.iter_bytes("media/v1/v1-abc/hls/480p/early.m3u8")).decode()
    assert text.rstrip().endswith("#EXT-X-ENDLIST") and "#EXTINF:0.733000,\nseg_002.m4s" in text
    partial = repo.partial("v1")
    assert partial is not None
    hls = next(r for r in partial.renditions if r["name"] == "480p.hls")
    assert hls["ended"] and hls["seconds"] == 4.733
    assert set(early.uploaded) >= {"media/v1/v1-abc/hls/480p/seg_002.m4s", "media/v1/v1-abc/poster.webp"}

    # Another attempt took over: this one stops publishing, and the record shows nothing of it.
    repo.requeue("v1", attempt)
    assert repo.claim("v1", 3).attempt == attempt + 1
    assert repo.partial("v1") is None
    (low / "seg_003.m4s").write_bytes(b"3")
    (low / "seg_004.m4s").write_bytes(b"4")
    early.poll()
    assert repo.partial("v1") is None and not early._owned
