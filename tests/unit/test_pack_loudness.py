"""Track loudness: measured once at validation, stored in the built pack, never measured again."""

from __future__ import annotations

import re
import subprocess
import zipfile
from pathlib import Path

import pytest

from media_service.packs import load_registry
from media_service.packs import loudness as ld
from media_service.packs.archive import build_zip, extract_or_clean
from tests.support.packs import write_music_pack

REPO = Path(__file__).resolve().parents[2]


def ffmpeg_summary(path: Path) -> tuple[float, float]:
    """ffmpeg's own integrated loudness and true peak."""
    err = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-nostats", "-i", str(path), "-af",
                          "ebur128=peak=true", "-f", "null", "-"], capture_output=True, text=True, check=True,
                         timeout=60).stderr
    summary = err[err.rfind("Summary:"):]
    integrated = re.search(r"I:\s+(-?[\d.]+) LUFS", summary)
    peak = re.search(r"Peak:\s+(-?[\d.]+) dBFS", summary)
    assert integrated and peak
    return float(integrated.group(1)), float(peak.group(1))


def test_measurement_matches_ffmpeg_and_keeps_every_block(tmp_path: Path) -> None:
    track = write_music_pack(tmp_path, seconds=8) / "tmusic" / "tone.ogg"
    measured = ld.measure(track)
    integrated, peak = ffmpeg_summary(track)
    assert abs(measured.integrated - integrated) < 0.2 and abs(measured.true_peak - peak) < 0.15
    assert len(measured.momentary) == len(measured.peaks) == pytest.approx(80, abs=2)
    assert measured.lra < 1


def test_gating_follows_bs1770() -> None:
    assert ld.gated_loudness([-20.0] * 50)[0] == pytest.approx(-20.0)
    # Silence and very quiet blocks are gated out; the relative gate is 10 LU under the loud part.
    integrated, threshold = ld.gated_loudness([-20.0] * 50 + [-120.0] * 50 + [-35.0] * 50)
    # abs-gated mean of −20 and −35 is −22.88 LUFS, so the gate is at −32.88 and the −35 blocks fall out.
    assert integrated == pytest.approx(-20.0) and threshold == pytest.approx(-32.875, abs=0.01)
    assert ld.gated_loudness([-120.0] * 10)[0] == ld.SILENCE


def test_excerpt_follows_gain_and_loop() -> None:
    track = ld.summarise([-20.0] * 100 + [-30.0] * 100, [-5.0] * 200)
    loud_half = ld.excerpt(track, [0.1 * i for i in range(1, 90)], [0.0] * 89)
    assert loud_half.integrated == pytest.approx(-20.0)
    louder = ld.excerpt(track, [0.1 * i for i in range(1, 90)], [6.0] * 89)
    assert louder.integrated == pytest.approx(-14.0) and louder.true_peak == pytest.approx(1.0)
    quiet_half = ld.excerpt(track, [10.0 + 0.1 * i for i in range(1, 90)], [0.0] * 89)
    assert quiet_half.integrated == pytest.approx(-30.0)


def test_build_stores_it_and_loading_the_archive_measures_nothing(tmp_path: Path,
                                                                  monkeypatch: pytest.MonkeyPatch) -> None:
    root = write_music_pack(tmp_path / "src", seconds=6)
    archive = tmp_path / "tmusic.zip"
    assert subprocess.run([str(REPO / ".venv/bin/media-service"), "packs", "build", str(root / "tmusic"), "-o",
                           str(archive)], capture_output=True, text=True, timeout=120).returncode == 0
    with zipfile.ZipFile(archive) as zf:
        assert "tmusic/loudness.json" in zf.namelist()
    folder = extract_or_clean(archive, tmp_path / "x")

    def no_measuring(path: Path, timeout: float = 0) -> ld.Loudness:
        raise AssertionError(f"measured {path} again")

    monkeypatch.setattr(ld, "measure", no_measuring)
    registry = load_registry([], [], [folder.parent], cache=tmp_path / "empty-cache")
    track = registry.tracks["tmusic/tone"]
    assert -19 < track.loudness.integrated < -17 and len(track.loudness.momentary) > 50
    assert track.public()["loudness"]["integrated_lufs"] == round(track.loudness.integrated, 2)


def test_a_changed_file_is_measured_again(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    import media_service.packs.registry as registry_module

    monkeypatch.setattr(registry_module, "default_cache", lambda: tmp_path / "machine-cache")  # not the real one
    root = write_music_pack(tmp_path / "src", seconds=6)
    first = load_registry([], [], [root], cache=tmp_path / "c").tracks["tmusic/tone"].loudness
    calls: list[Path] = []
    real = ld.measure
    monkeypatch.setattr(ld, "measure", lambda path, timeout=120: calls.append(path) or real(path, timeout))
    load_registry([], [], [root], cache=tmp_path / "c")
    assert calls == []  # cached by content
    write_music_pack(tmp_path / "src", frequency=1000, seconds=6)  # same name, other content
    second = load_registry([], [], [root], cache=tmp_path / "c").tracks["tmusic/tone"].loudness
    assert len(calls) == 1 and second != first


def test_stale_stored_value_is_not_trusted(tmp_path: Path) -> None:
    root = write_music_pack(tmp_path / "src", seconds=6)
    build_zip(root / "tmusic", tmp_path / "plain.zip", {"loudness.json": b'{"tone.ogg": {"sha256": "0"}}'})
    folder = extract_or_clean(tmp_path / "plain.zip", tmp_path / "x")
    assert ld.stored(folder, "tone.ogg", ld.file_digest(folder / "tone.ogg")) is None
