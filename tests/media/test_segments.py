"""A long video rendered in segments and joined without re-encoding, against the same video in one pass:
real ffmpeg on a generated clip, looked at the way a player would (ffprobe frames and packets, decoded
pixels and samples)."""

from __future__ import annotations

import itertools
import json
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from media_service.packs import PackRegistry, load_registry
from media_service.pipeline.segments import (
    SegmentPlan,
    join_segments,
    plan_segments,
    render_audio,
    render_segment,
    render_stills,
)
from media_service.pipeline.video import VideoJob, prepare_workdir, run_video_pipeline
from media_service.probe import probe_video
from media_service.recipe import recipe_from_dict
from tests.support.packs import write_look_pack, write_music_pack, write_sticker_pack
from tests.support.video import FFMPEG, audio_samples, frame_at, keyframe_times, make_video, probe, stream

pytestmark = pytest.mark.media

FPS = 30
PRESET = "superfast"  # B-frames, as production's veryfast: the joins must handle reordered frames
# 29.25 s of result from a 30 s clip: five segments of 6 s (three GOPs each) and a short last one.
RECIPE = {"aspect": "1:1", "filter": {"id": "tlooks/warm", "intensity": 0.8}, "trim": {"start": 0.5, "end": 29.75},
          # Across the join at 12 s, in the second rung's and the first's own sizes alike.
          "stickers": [{"id": "tstickers/red", "x": 0.5, "y": 0.2, "scale": 0.3, "start": 10.5, "end": 13.5}],
          "cover": {"time": 12.2}}
SEGMENT_SECONDS = 6.0


@dataclass
class Renders:
    single: VideoJob
    joined: VideoJob
    plan: SegmentPlan
    root: Path


def _render_parts(src: Path, registry: PackRegistry, root: Path, recipe: Any, plan: SegmentPlan) -> Path:
    """Every part in its own folder (as on different workers), gathered under the join's names."""
    facts = probe_video(src)
    join = root / "join"
    join.mkdir()
    for part in plan.parts:
        work = root / part
        work.mkdir()
        prepare_workdir(src, work)
        if part == "audio":
            result = render_audio(work / "source", facts, recipe, registry, work)
        elif part == "stills":
            result = render_stills(work / "source", facts, recipe, registry, work, plan, x264_preset=PRESET)
        else:
            result = render_segment(work / "source", facts, recipe, registry, work, plan, plan.piece(part),
                                    x264_preset=PRESET)
        for name, path in result.files.items():
            shutil.copyfile(path, join / plan.local_name(part, name))
        shutil.rmtree(work)
    return join


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Renders:
    root = tmp_path_factory.mktemp("segments")
    registry = load_registry([write_look_pack(root / "f")], [write_sticker_pack(root / "s")],
                             [write_music_pack(root / "m")])
    # Cropped to 482×482: two rungs (482p and 480p), so keyframe alignment across rungs is checked too, at
    # a quarter of a phone frame's cost.
    src = make_video(root / "in.mp4", width=482, height=856, seconds=30.0,
                     video=f"testsrc2=size=482x856:rate={FPS}", audio="sine=frequency=440:sample_rate=48000")
    facts = probe_video(src)
    recipe = recipe_from_dict(RECIPE)
    one = root / "one"
    one.mkdir()
    prepare_workdir(src, one)
    single = run_video_pipeline(VideoJob(source=one / "source", facts=facts, recipe=recipe, registry=registry,
                                         workdir=one, x264_preset=PRESET))
    plan = plan_segments(facts, recipe, SEGMENT_SECONDS)
    join = _render_parts(src, registry, root, recipe, plan)
    joined = join_segments(join, facts, recipe, registry, plan)
    return Renders(single, joined, plan, root)


def out(job: VideoJob, name: str) -> Path:
    return next(r.path for r in job.renditions if r.name == name)


def frames(path: Path, kind: str = "v") -> list[dict[str, Any]]:
    data = subprocess.run(["ffprobe", "-v", "error", "-select_streams", f"{kind}:0", "-show_entries",
                           "packet=pts,dts,duration,flags", "-of", "json", str(path)],
                          check=True, capture_output=True, timeout=60).stdout
    packets: list[dict[str, Any]] = json.loads(data)["packets"]
    return packets


def test_plan_cuts_on_the_keyframe_grid(renders: Renders) -> None:
    plan = renders.plan
    assert plan.frames == 878  # ceil(29.25 × 30), as one pass writes
    assert [(p.first, p.frames) for p in plan.pieces] == [(0, 180), (180, 180), (360, 180), (540, 180),
                                                         (720, 158)]
    assert plan.parts == ["s000", "s001", "s002", "s003", "s004", "audio", "stills"]
    assert plan.rungs == ("482p", "480p")


def test_same_renditions_duration_and_frames(renders: Renders) -> None:
    assert [r.name for r in renders.joined.renditions] == [r.name for r in renders.single.renditions]
    for rung in ("482p", "480p"):
        one, joined = probe(out(renders.single, f"{rung}.mp4")), probe(out(renders.joined, f"{rung}.mp4"))
        for kind in ("video", "audio"):
            a, b = stream(one, kind), stream(joined, kind)
            assert a is not None and b is not None
            assert (a["codec_name"], a.get("width"), a.get("profile")) == (b["codec_name"], b.get("width"),
                                                                         b.get("profile"))
            assert abs(float(a["duration"]) - float(b["duration"])) <= 1 / FPS + 1e-6
        v1, v2 = frames(out(renders.single, f"{rung}.mp4")), frames(out(renders.joined, f"{rung}.mp4"))
        assert len(v1) == len(v2) == 878
        assert abs(float(one["format"]["duration"]) - float(joined["format"]["duration"])) <= 1 / FPS
        head = out(renders.joined, f"{rung}.mp4").read_bytes()[:1 << 16]
        assert b"moov" in head and head.find(b"moov") < max(head.find(b"mdat"), 0) + (b"mdat" not in head) * 10**6


def test_keyframes_every_two_seconds_aligned_across_rungs(renders: Renders) -> None:
    expected = [float(t) for t in range(0, 30, 2)]
    for rung in ("482p", "480p"):
        assert keyframe_times(out(renders.joined, f"{rung}.mp4")) == expected
        assert keyframe_times(out(renders.single, f"{rung}.mp4")) == expected


def test_no_timestamp_gaps_or_duplicates_at_the_joins(renders: Renders) -> None:
    for rung in ("482p", "480p"):
        packets = frames(out(renders.joined, f"{rung}.mp4"))
        pts = sorted(int(p["pts"]) for p in packets)
        step = pts[1] - pts[0]
        assert all(b - a == step for a, b in itertools.pairwise(pts)), "a gap or a duplicate frame"
        dts = [int(p["dts"]) for p in packets]
        assert all(b > a for a, b in itertools.pairwise(dts)), "decode order goes back at a join"
        # Every segment starts on a keyframe: the packets at the joins are key packets.
        by_pts = {int(p["pts"]): p for p in packets}
        for piece in renders.plan.pieces:
            assert "K" in by_pts[pts[0] + piece.first * step]["flags"]
    audio = frames(out(renders.joined, "482p.mp4"), "a")
    apts = [int(p["pts"]) for p in audio]
    assert all(b - a == int(p["duration"]) for a, b, p in zip(apts, apts[1:], audio, strict=False))


def test_audio_and_video_start_and_end_together(renders: Renders) -> None:
    for job in (renders.joined, renders.single):
        info = probe(out(job, "482p.mp4"))
        v, a = stream(info, "video"), stream(info, "audio")
        assert v is not None and a is not None
        assert abs(float(v["start_time"]) - float(a["start_time"])) < 1 / FPS
        v_end = float(v["start_time"]) + float(v["duration"])
        a_end = float(a["start_time"]) + float(a["duration"])
        assert abs(v_end - a_end) < 1 / FPS


def test_audio_is_the_one_pass_mix_and_continuous(renders: Renders) -> None:
    one, joined = audio_samples(out(renders.single, "480p.mp4")), audio_samples(out(renders.joined, "480p.mp4"))
    assert len(one) == len(joined)
    assert np.allclose(one, joined, atol=1e-4)  # the same graph and encoder: the same samples
    # A steady tone: no dropout or click anywhere, the joins included (50 ms windows).
    rms = np.sqrt(np.mean(joined[:len(joined) // 2400 * 2400].reshape(-1, 2400) ** 2, axis=1))
    assert rms[2:-2].min() > 0.8 * np.median(rms)


def _ssim_per_frame(a: Path, b: Path) -> list[float]:
    err = subprocess.run([*FFMPEG[:-1], "-loglevel", "info", "-i", str(a), "-i", str(b), "-lavfi",
                          "[0:v][1:v]ssim=stats_file=-", "-f", "null", "-"], capture_output=True, timeout=120,
                         text=True)
    return [float(m) for m in re.findall(r"All:([0-9.]+)", err.stdout)]


def test_pixels_match_one_pass_at_the_joins(renders: Renders) -> None:
    for rung in ("482p", "480p"):
        ssim = _ssim_per_frame(out(renders.single, f"{rung}.mp4"), out(renders.joined, f"{rung}.mp4"))
        assert len(ssim) == 878
        assert np.mean(ssim) > 0.995
        for piece in renders.plan.pieces[1:]:
            around = ssim[piece.first - 2:piece.first + 3]
            assert min(around) > 0.98, (rung, piece, around)  # the same frames, only encoded apart


def test_sticker_window_across_a_join(renders: Renders) -> None:
    path = out(renders.joined, "482p.mp4")
    box_y, box_x = int(482 * 0.2), 241
    for t, shown in ((10.2, False), (10.7, True), (11.95, True), (12.05, True), (13.3, True), (13.7, False)):
        r, g, b = frame_at(path, t)[box_y, box_x].astype(int)
        assert (r > 180 and g < 90 and b < 90) == shown, (t, (r, g, b))


def test_hls_poster_and_preview_like_one_pass(renders: Renders) -> None:
    for rung in ("482p", "480p"):
        def extinf(job: VideoJob, rung: str = rung) -> list[float]:
            text = (job.workdir / "hls" / rung / "index.m3u8").read_text()
            return [float(x) for x in re.findall(r"#EXTINF:([0-9.]+)", text)]

        assert extinf(renders.joined) == extinf(renders.single)
    # Bitrates differ a little (the segments are encoded apart); the rest of the master playlist is the same.
    masters = [re.sub(r"BANDWIDTH=\d+", "", (job.workdir / "hls" / "master.m3u8").read_text())
               for job in (renders.single, renders.joined)]
    assert masters[0] == masters[1] and "mp4a.40.2" in masters[1]
    from PIL import Image

    with Image.open(out(renders.single, "poster.jpg")) as a, Image.open(out(renders.joined, "poster.jpg")) as b:
        diff = np.abs(np.asarray(a.convert("RGB"), dtype=int) - np.asarray(b.convert("RGB"), dtype=int))
    assert diff.mean() < 1.0  # the same frame, with the sticker on it
    assert renders.joined.placeholder == renders.single.placeholder
    with Image.open(out(renders.joined, "preview.webp")) as p:
        assert getattr(p, "n_frames", 1) == 36  # 3 s at 12 fps



def test_cover_candidates_are_the_one_pass_ones(renders: Renders) -> None:
    """Each segment samples its frames on the whole video's grid; joined, they score as one pass's do."""
    def candidates(job: object) -> list[tuple[float, float]]:
        info = job.outputs_info  # type: ignore[attr-defined]
        return [(info[n]["time"], info[n]["score"]) for n in sorted(info) if n.startswith("cover-")]

    single, joined = candidates(renders.single), candidates(renders.joined)
    assert len(single) == 6 and [t for t, _ in joined] == [t for t, _ in single]
    assert [s for _, s in joined] == pytest.approx([s for _, s in single], abs=0.02)
