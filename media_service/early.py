"""The first usable renditions of a video while its one pass is still running: the poster as soon as ffmpeg
has written the cover frame, and the lowest rung as a growing HLS playlist (EXT-X-PLAYLIST-TYPE:EVENT) whose
segments are uploaded as ffmpeg finishes them. A client can show the poster and start playing at 480p long
before the whole ladder is done; everything goes under the version the pass will publish, so nothing is
uploaded twice and a failed attempt's cleanup removes it too.
"""

from __future__ import annotations

import logging
import math
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from media_service.db import MediaRepo
from media_service.imaging.encode import encode_jpeg, encode_webp
from media_service.periodic import Periodic
from media_service.storage import Storage, StoredObject

log = logging.getLogger("media_service.early")
POLL_SECONDS = 1.0
SEGMENT = re.compile(r"^seg_(\d+)\.m4s$")
RUNG_DIR = re.compile(r"^(\d+)p$")
EARLY_PLAYLIST = "early.m3u8"


def event_playlist(segments: list[tuple[str, float]], init: str = "init.mp4", ended: bool = False) -> str:
    """An HLS media playlist over the segments (name, seconds) written so far; players reload it until it
    ends (EXT-X-ENDLIST)."""
    target = math.ceil(max((d for _, d in segments), default=1.0) - 1e-3)
    lines = ["#EXTM3U", "#EXT-X-VERSION:7", f"#EXT-X-TARGETDURATION:{target}", "#EXT-X-MEDIA-SEQUENCE:0",
             "#EXT-X-PLAYLIST-TYPE:EVENT", "#EXT-X-INDEPENDENT-SEGMENTS", f'#EXT-X-MAP:URI="{init}"']
    for name, seconds in segments:
        lines += [f"#EXTINF:{seconds:.6f},", name]
    if ended:
        lines.append("#EXT-X-ENDLIST")
    return "\n".join(lines) + "\n"


@dataclass
class EarlyPublisher:
    """Polls the job's work folder from a thread while ffmpeg runs (``start``/``stop`` around the pass)."""

    repo: MediaRepo
    storage: Storage
    media_id: str
    attempt: int
    version: str
    prefix: str  # media/<id>/<version>/
    workdir: Path
    segment_seconds: float = 2.0
    uploaded: dict[str, StoredObject] = field(default_factory=dict)  # key → stored, for the final upload to reuse
    _loop: Periodic | None = None
    _poster_done: bool = False
    _segments: int = 0
    _owned: bool = True

    def start(self) -> None:
        # A round that fails (storage or database trouble) is logged and the next one comes: the pass goes on,
        # and its final publish decides.
        self._loop = Periodic(f"early renditions of {self.media_id}", POLL_SECONDS, self.poll)
        self._loop.start()

    def stop(self) -> None:
        if self._loop is not None:
            self._loop.stop(wait=30)

    def poll(self) -> None:
        if not self._owned:
            return
        entries = self._poster() + self._lowest_rung()
        if entries and not self.repo.add_partial(self.media_id, self.attempt, self.version, entries):
            self._owned = False  # deleted, or another attempt took over: the pass itself will find out

    def _put(self, name: str, path: Path, content_type: str) -> StoredObject:
        key = self.prefix + name
        stored = self.storage.put_file(key, path, content_type)
        self.uploaded[key] = stored
        return stored

    def _poster(self) -> list[dict[str, Any]]:
        png = self.workdir / "poster.png"
        if self._poster_done or not png.exists():
            return []
        try:
            with Image.open(png) as img:
                img.load()  # a file ffmpeg is still writing does not decode: try again at the next poll
                frame = img.convert("RGB")
        except OSError:
            return []
        frame.info = {}
        early = self.workdir / "early"
        early.mkdir(exist_ok=True)
        entries = []
        for encoded, name in ((encode_webp(frame, early / "poster.webp"), "poster.webp"),
                              (encode_jpeg(frame, early / "poster.jpg"), "poster.jpg")):
            stored = self._put(name, encoded.path, encoded.content_type)
            entries.append({"name": name, "content_type": encoded.content_type, "width": encoded.width,
                            "height": encoded.height, "bytes": encoded.bytes, "key": self.prefix + name,
                            "sha256": stored.sha256})
        self._poster_done = True
        return entries

    def _lowest(self) -> tuple[int, Path] | None:
        """The lowest rung's short side and HLS folder, once ffmpeg has made it."""
        hls = self.workdir / "hls"
        rungs = sorted((int(m.group(1)), d) for d in hls.iterdir() if (m := RUNG_DIR.match(d.name))) \
            if hls.is_dir() else []
        return rungs[0] if rungs else None

    def _lowest_rung(self) -> list[dict[str, Any]]:
        lowest = self._lowest()
        if lowest is None:
            return []
        short, folder = lowest
        written = sorted(int(m.group(1)) for p in folder.iterdir() if (m := SEGMENT.match(p.name)))
        # A segment is finished once ffmpeg has opened the next one.
        finished = [n for n in written if n + 1 in written]
        if len(finished) <= self._segments or not (folder / "init.mp4").exists():
            return []
        base = f"hls/{folder.name}/"
        if self._segments == 0:
            self._put(base + "init.mp4", folder / "init.mp4", "video/mp4")
        for n in finished[self._segments:]:
            self._put(f"{base}seg_{n:03d}.m4s", folder / f"seg_{n:03d}.m4s", "video/iso.segment")
        self._segments = len(finished)
        return self._playlist(folder, short, [(f"seg_{n:03d}.m4s", self.segment_seconds) for n in finished])

    def _playlist(self, folder: Path, short: int, segments: list[tuple[str, float]], ended: bool = False
                  ) -> list[dict[str, Any]]:
        playlist = self.workdir / "early" / f"{folder.name}.m3u8"
        playlist.parent.mkdir(exist_ok=True)
        playlist.write_text(event_playlist(segments, ended=ended))
        # Beside the final playlist (index.m3u8, written at publish), so segment URIs resolve the same way.
        key = f"hls/{folder.name}/{EARLY_PLAYLIST}"
        self.storage.put_file(self.prefix + key, playlist, "application/vnd.apple.mpegurl")
        return [{"name": f"{folder.name}.hls", "content_type": "application/vnd.apple.mpegurl", "playlist": key,
                 "short_side": short, "seconds": round(sum(d for _, d in segments), 3), "ended": ended,
                 "key": self.prefix + key}]

    def finish(self) -> None:
        """The pass is over: the growing playlist gets its last segments (with the durations ffmpeg wrote)
        and its end, so a player that started early plays to the end and stops reloading."""
        lowest = self._lowest()
        if self._segments == 0 or not self._owned or lowest is None:
            return
        short, folder = lowest
        final = (folder / "index.m3u8").read_text().splitlines()
        segments = [(line.strip(), float(final[i - 1].split(":", 1)[1].rstrip(",")))
                    for i, line in enumerate(final)
                    if SEGMENT.match(line.strip()) and final[i - 1].startswith("#EXTINF")]
        for name, _ in segments[self._segments:]:
            self._put(f"hls/{folder.name}/{name}", folder / name, "video/iso.segment")
        self._segments = len(segments)
        self.repo.add_partial(self.media_id, self.attempt, self.version,
                              self._playlist(folder, short, segments, ended=True))

