"""The committed starter music pack (music/starter) is complete, well formed, freely licensed and sounds sane.

Checks the data files themselves with tomllib, ffprobe and ffmpeg (argv lists, no shell); it does not
import the service, whose pack loader has its own tests. The pack is made by
scripts/make_starter_music.py from Debian packages, which this test does not need.
"""

from __future__ import annotations

import json
import math
import re
import shutil
import subprocess
import tomllib
from functools import cache
from pathlib import Path
from typing import Any

import pytest

pytestmark = pytest.mark.media

REPO = Path(__file__).resolve().parents[2]
PACK_DIR = REPO / "music" / "starter"

ID_RE = re.compile(r"^[a-z0-9_-]{1,40}$")
SEMVER_RE = re.compile(r"^\d+\.\d+\.\d+(?:-[0-9A-Za-z.-]+)?(?:\+[0-9A-Za-z.-]+)?$")
PACK_KEYS = {"id", "version", "title", "author", "license", "description"}
TRACK_REQUIRED = {"id", "title", "artist", "file", "license", "source"}
TRACK_OPTIONAL = {"loop", "tags"}
# Free licences that allow redistribution and modification (SPDX ids). Anything else needs a review.
FREE_LICENSES = {
    "CC0-1.0",
    "CC-BY-3.0",
    "CC-BY-4.0",
    "CC-BY-SA-3.0",
    "CC-BY-SA-4.0",
    "GPL-2.0-only",
    "GPL-2.0-or-later",
    "GPL-3.0-only",
    "GPL-3.0-or-later",
    "MIT",
    "Artistic-2.0",
}
# The only tags a track may carry (everything else was stripped with -map_metadata -1).
ALLOWED_TAGS = {"title", "artist", "license", "comment", "encoder"}
MIN_TRACKS = 8
MIN_SECONDS, MAX_SECONDS = 45.0, 120.0
MIN_LUFS, MAX_LUFS = -30.0, -8.0
MAX_TRUE_PEAK_DBTP = 0.0
MAX_PACK_BYTES = 12 * 1024 * 1024

needs_ffmpeg = pytest.mark.skipif(
    shutil.which("ffmpeg") is None or shutil.which("ffprobe") is None, reason="ffmpeg/ffprobe not installed"
)


@cache
def manifest() -> dict[str, Any]:
    with (PACK_DIR / "pack.toml").open("rb") as f:
        return tomllib.load(f)


def tracks() -> list[dict[str, Any]]:
    return list(manifest()["tracks"])


def track_ids() -> list[str]:
    return [t["id"] for t in tracks()]


@cache
def probe(file: str) -> dict[str, Any]:
    out = subprocess.run(
        ["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(PACK_DIR / file)],
        check=True,
        capture_output=True,
        text=True,
        timeout=60,
    ).stdout
    result: dict[str, Any] = json.loads(out)
    return result


@cache
def loudness(file: str) -> tuple[float, float]:
    """(integrated loudness in LUFS, true peak in dBTP) from ffmpeg's EBU R128 meter."""
    err = subprocess.run(
        ["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(PACK_DIR / file),
         "-af", "ebur128=peak=true", "-f", "null", "-"],
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    ).stderr  # fmt: skip
    summary = err[err.rindex("Summary:") :]
    i = re.search(r"I:\s+(-?[\d.]+|-inf) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+|-inf) dBFS", summary)
    assert i and peak, f"no EBU R128 summary for {file}:\n{summary}"
    return float(i.group(1)), float(peak.group(1))


def by_id(track_id: str) -> dict[str, Any]:
    return next(t for t in tracks() if t["id"] == track_id)


# --------------------------------------------------------------------------------------------------
# Manifest
# --------------------------------------------------------------------------------------------------


def test_pack_table() -> None:
    pack = manifest()["pack"]
    assert set(pack) == PACK_KEYS
    assert pack["id"] == "starter"
    assert pack["version"] == "1.0.0" and SEMVER_RE.match(pack["version"])
    assert set(pack["title"]) == {"en", "zh"} and all(pack["title"].values())
    assert pack["author"] == "notes-media (tracks by their artists)"
    assert pack["description"].strip()


def test_pack_license_joins_the_track_licenses() -> None:
    parts = manifest()["pack"]["license"].split(" AND ")
    assert len(parts) == len(set(parts)), "a licence is repeated in the pack expression"
    assert set(parts) == {t["license"] for t in tracks()}


def test_only_tracks_no_looks_or_stickers() -> None:
    assert set(manifest()) == {"pack", "tracks"}


def test_enough_tracks_with_unique_ids() -> None:
    ids = track_ids()
    assert len(ids) >= MIN_TRACKS
    assert len(set(ids)) == len(ids)
    for track_id in ids:
        assert ID_RE.match(track_id), track_id


@pytest.mark.parametrize("track_id", track_ids())
def test_track_fields(track_id: str) -> None:
    t = by_id(track_id)
    assert set(t) >= TRACK_REQUIRED, f"missing {TRACK_REQUIRED - set(t)}"
    assert set(t) <= TRACK_REQUIRED | TRACK_OPTIONAL, f"unknown keys {set(t) - TRACK_REQUIRED - TRACK_OPTIONAL}"
    assert set(t["title"]) == {"en", "zh"} and all(isinstance(v, str) and v.strip() for v in t["title"].values())
    assert re.search(r"[\u4e00-\u9fff]", t["title"]["zh"]), "the zh title has no Chinese characters"
    assert isinstance(t["artist"], str) and t["artist"].strip()
    assert t["license"] in FREE_LICENSES, f"{t['license']} is not on the free-licence allow-list"
    assert t["file"] == f"{track_id}.ogg"
    # Provenance: the Debian package and version, the original path, what was done.
    assert re.match(r"Debian package [a-z0-9][a-z0-9+.-]+ \S+, /usr/share/\S", t["source"]), t["source"]
    assert "Ogg Vorbis q4" in t["source"]
    if "tags" in t:
        assert t["tags"] and all(isinstance(tag, str) and ID_RE.match(tag) for tag in t["tags"])
    if "loop" in t:
        assert set(t["loop"]) == {"start", "end"}
        assert all(isinstance(v, float) for v in t["loop"].values())


def test_files_exist_and_all_are_referenced() -> None:
    referenced = {t["file"] for t in tracks()}
    for name in referenced:
        assert (PACK_DIR / name).is_file(), name
    audio_suffixes = {".ogg", ".opus", ".mp3", ".m4a", ".flac", ".wav"}
    audio = {p.name for p in PACK_DIR.iterdir() if p.suffix.lower() in audio_suffixes}
    assert audio == referenced, f"unreferenced: {audio - referenced}"


def test_pack_size() -> None:
    total = sum(p.stat().st_size for p in PACK_DIR.glob("*.ogg"))
    assert total <= MAX_PACK_BYTES, f"{total / 1e6:.1f} MB"


def test_credits_and_licence_notices_are_shipped() -> None:
    readme = (PACK_DIR / "README.md").read_text(encoding="utf-8")
    notices = (PACK_DIR / "LICENSES.md").read_text(encoding="utf-8")
    for t in tracks():
        assert t["artist"] in readme, f"README.md does not credit {t['artist']}"
        assert t["title"]["en"] in readme
        assert t["artist"] in notices, f"LICENSES.md does not name {t['artist']}"
        package = t["source"].split()[2]
        assert (PACK_DIR / "licenses" / "debian" / f"{package}.copyright").is_file(), package
    if any(t["license"].startswith("GPL-2.0") for t in tracks()):
        assert "GNU GENERAL PUBLIC LICENSE" in (PACK_DIR / "licenses" / "GPL-2.0.txt").read_text(encoding="utf-8")


# --------------------------------------------------------------------------------------------------
# Audio
# --------------------------------------------------------------------------------------------------


@needs_ffmpeg
@pytest.mark.parametrize("track_id", track_ids())
def test_audio_format(track_id: str) -> None:
    t = by_id(track_id)
    info = probe(t["file"])
    streams = info["streams"]
    assert len(streams) == 1, "exactly one stream"
    (s,) = streams
    assert s["codec_type"] == "audio"
    assert s["codec_name"] == "vorbis"
    assert info["format"]["format_name"] == "ogg"
    assert s["channels"] == 2
    assert int(s["sample_rate"]) == 48000
    duration = float(info["format"]["duration"])
    assert MIN_SECONDS <= duration <= MAX_SECONDS, duration
    # Nothing longer hides in the file: the container's duration is the stream's.
    assert math.isclose(float(s["duration"]), duration, abs_tol=0.05)
    tags = {k.lower(): v for k, v in {**info["format"].get("tags", {}), **s.get("tags", {})}.items()}
    assert set(tags) <= ALLOWED_TAGS, f"unexpected metadata {set(tags) - ALLOWED_TAGS}"
    assert tags.get("license") == t["license"]
    assert tags.get("artist") == t["artist"]


@needs_ffmpeg
@pytest.mark.parametrize("track_id", [t["id"] for t in tracks() if "loop" in t])
def test_loop_inside_the_track(track_id: str) -> None:
    t = by_id(track_id)
    duration = float(probe(t["file"])["format"]["duration"])
    start, end = t["loop"]["start"], t["loop"]["end"]
    assert 0.0 <= start < end <= duration
    assert end - start >= 10.0, "a loop this short would be heard repeating"


@needs_ffmpeg
@pytest.mark.parametrize("track_id", track_ids())
def test_not_silent_and_not_clipped(track_id: str) -> None:
    lufs, peak = loudness(by_id(track_id)["file"])
    assert MIN_LUFS <= lufs <= MAX_LUFS, f"integrated loudness {lufs} LUFS"
    assert peak <= MAX_TRUE_PEAK_DBTP, f"true peak {peak} dBTP"
