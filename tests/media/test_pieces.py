"""A long video in pieces at once on one worker (pipeline/pieces.py): the same renditions as one pass, parts
really concurrent, progress in one fraction, and a part that fails stops the others."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from media_service.errors import Cancelled, CorruptMedia
from media_service.packs import PackRegistry, load_registry
from media_service.pipeline import pieces
from media_service.pipeline.video import VideoJob, prepare_workdir
from media_service.probe import probe_video
from media_service.recipe import recipe_from_dict
from tests.support.packs import write_look_pack, write_music_pack, write_sticker_pack
from tests.support.video import frame_at, keyframe_times, make_video, probe, stream

pytestmark = pytest.mark.media

FPS = 30
# 22 s: two pieces of 14 s and 8 s (whole GOPs; the last is shorter, it starts after the stills and audio),
# the sticker's window across the cut at 14 s.
RECIPE = {"filter": {"id": "tlooks/warm", "intensity": 0.8},
          "stickers": [{"id": "tstickers/red", "x": 0.5, "y": 0.3, "scale": 0.4, "start": 13.0, "end": 15.0}],
          "music": {"id": "tmusic/tone", "volume": 0.5}, "cover": {"time": 15.5}}


@dataclass
class Renders:
    one: VideoJob
    split: VideoJob
    progress: list[float]
    concurrent: int
    workdir: Path


def _registry(root: Path) -> PackRegistry:
    return load_registry([write_look_pack(root / "f")], [write_sticker_pack(root / "s")],
                         [write_music_pack(root / "m", seconds=8)])


@pytest.fixture(scope="module")
def renders(tmp_path_factory: pytest.TempPathFactory) -> Renders:
    root = tmp_path_factory.mktemp("pieces")
    registry = _registry(root)
    src = make_video(root / "in.mp4", width=320, height=568, seconds=22.0, video=f"testsrc2=size=320x568:rate={FPS}",
                     audio="sine=frequency=440:sample_rate=48000")
    facts = probe_video(src)
    recipe = recipe_from_dict(RECIPE)
    jobs = {}
    for name, n in (("one", 1), ("split", 2)):
        work = root / name
        work.mkdir()
        prepare_workdir(src, work)
        jobs[name] = (work, n)
    one = pieces.render_video(jobs["one"][0] / "source", facts, recipe, registry, jobs["one"][0], pieces=1)
    # How many parts run at once: counted where each part starts and ends.
    running, peak, lock = [0], [0], threading.Lock()
    real = pieces.render_named_part

    def counted(*args: Any, **kwargs: Any) -> Any:
        with lock:
            running[0] += 1
            peak[0] = max(peak[0], running[0])
        try:
            return real(*args, **kwargs)
        finally:
            with lock:
                running[0] -= 1

    progress: list[float] = []
    mp = pytest.MonkeyPatch()
    mp.setattr(pieces, "render_named_part", counted)
    try:
        work = jobs["split"][0]
        split = pieces.render_video(work / "source", facts, recipe, registry, work, pieces=2,
                                    progress=progress.append)
    finally:
        mp.undo()
    return Renders(one, split, progress, peak[0], work)


def out(job: VideoJob, name: str) -> Path:
    return next(r.path for r in job.renditions if r.name == name)


def test_the_last_piece_is_shorter_by_the_head_start(renders: Renders) -> None:
    # 22 s + 4 s over two pieces: 13 s → 14 s (whole GOPs) and the 8 s left, which waits for stills and audio.
    assert renders.split.timings["part_s000"] > renders.split.timings["part_s001"]


def test_pieces_for() -> None:
    assert pieces.pieces_for(19.9, 2) == 1  # short: one pass
    assert pieces.pieces_for(20.0, 2) == 2
    assert pieces.pieces_for(60.0, 1) == 1
    assert pieces.pieces_for(21.0, 8) == 5  # never a piece shorter than two GOPs
    assert pieces.pieces_for(60.0, 8, min_seconds=90) == 1


def test_parts_ran_at_once_and_reported_one_progress(renders: Renders) -> None:
    assert "parts" in renders.split.timings and "parts" not in renders.one.timings
    assert {"part_s000", "part_s001", "part_audio", "part_stills"} <= set(renders.split.timings)
    assert renders.concurrent == 2  # a slot per piece: the stills, then the audio, before the last piece
    assert renders.progress and renders.progress == sorted(renders.progress)
    assert renders.progress[-1] >= 0.99
    assert (renders.workdir / "poster.png").exists()  # where the early publisher looks for it


def test_same_renditions_as_one_pass(renders: Renders) -> None:
    assert sorted(r.name for r in renders.split.renditions) == sorted(r.name for r in renders.one.renditions)
    one, split = probe(out(renders.one, "320p.mp4")), probe(out(renders.split, "320p.mp4"))
    for kind in ("video", "audio"):
        a, b = stream(one, kind), stream(split, kind)
        assert a is not None and b is not None
        assert abs(float(a["duration"]) - float(b["duration"])) <= 1 / FPS + 1e-6
    video = stream(split, "video")
    assert video is not None and int(video["nb_frames"]) == 22 * FPS
    assert keyframe_times(out(renders.split, "320p.mp4")) == [float(t) for t in range(0, 22, 2)]
    # The same variants (bandwidths differ: two encodes of the same edit).
    assert [(v["name"], v["width"], v["height"]) for v in renders.split.hls["variants"]] == \
        [(v["name"], v["width"], v["height"]) for v in renders.one.hls["variants"]]
    assert renders.split.outputs_info["poster.jpg"] == renders.one.outputs_info["poster.jpg"]
    assert any(info.get("role") == "cover_candidate" for info in renders.split.outputs_info.values())


def test_sticker_across_the_cut_and_pixels_like_one_pass(renders: Renders) -> None:
    one, split = out(renders.one, "320p.mp4"), out(renders.split, "320p.mp4")
    for t in (12.5, 13.5, 14.5, 15.5):  # before, in the window on both sides of the cut at 14 s, after
        a = frame_at(one, t).astype(np.float64)
        b = frame_at(split, t).astype(np.float64)
        assert np.abs(a - b).mean() < 3.0, t  # two lossy encodes of the same edit
    box = frame_at(split, 14.5)[150:190, 140:180].astype(np.float64)
    outside = frame_at(split, 15.5)[150:190, 140:180].astype(np.float64)
    assert box[..., 0].mean() > 180 and box[..., 1].mean() < 90  # the red sticker, after the cut
    assert np.abs(box - outside).mean() > 40  # gone after its window


def test_a_failing_part_stops_the_others(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    registry = _registry(tmp_path)
    src = make_video(tmp_path / "in.mp4", width=320, height=568, seconds=22.0,
                     video=f"testsrc2=size=320x568:rate={FPS}", audio="sine=frequency=440:sample_rate=48000")
    work = tmp_path / "w"
    work.mkdir()
    prepare_workdir(src, work)
    ended: dict[str, BaseException | None] = {}
    told_to_stop: dict[str, Any] = {}
    stills_running = threading.Event()
    real = pieces.render_named_part

    def failing(part: str, *args: Any, **kwargs: Any) -> Any:
        told_to_stop[part] = kwargs["should_stop"]
        if part == "stills":
            stills_running.set()
        try:
            if part == "s000":
                assert stills_running.wait(30)  # it fails while the stills part runs beside it
                raise CorruptMedia(detail="a broken piece")
            result = real(part, *args, **kwargs)
        except BaseException as exc:
            ended[part] = exc
            raise
        ended[part] = None
        return result

    monkeypatch.setattr(pieces, "render_named_part", failing)
    with pytest.raises(CorruptMedia):
        pieces.render_video(work / "source", probe_video(src), recipe_from_dict(RECIPE), registry, work, pieces=2)
    assert isinstance(ended["s000"], CorruptMedia)
    assert "s001" not in ended  # its turn came after the failure: never started
    assert ended["stills"] is None or isinstance(ended["stills"], Cancelled)
    assert told_to_stop["stills"]() is True  # the part running beside it is told to stop (runner: killed)
    assert not (work / "320p.mp4").exists()  # no join
