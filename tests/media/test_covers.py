"""Cover candidates and posters cut from one HLS segment, with real ffmpeg on generated videos."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from media_service.ffmpeg.hls import segment_at
from media_service.imaging.cover_score import best_candidates, score_frames
from media_service.packs import PackRegistry, load_registry
from media_service.pipeline.cover import poster_from_segment
from media_service.pipeline.video import VideoJob, prepare_workdir, run_video_pipeline
from media_service.probe import probe_video
from media_service.recipe import recipe_from_dict
from tests.support.packs import write_look_pack, write_sticker_pack
from tests.support.video import FFMPEG, frame_at, make_video, run

pytestmark = pytest.mark.media
ASTRONAUT = Path(__file__).resolve().parents[2] / "media_service" / "packs" / "samples" / "astronaut.jpg"
W, H = 640, 360


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> PackRegistry:
    root = tmp_path_factory.mktemp("packs")
    return load_registry([write_look_pack(root / "f")], [write_sticker_pack(root / "s")], [])


def shots_video(path: Path) -> Path:
    """Four shots with hard cuts: black 0–2 s, a sharp portrait 2–5 s, the same blurred 5–7 s, white 7–9 s."""
    fit = f"scale={W}:{H}:force_original_aspect_ratio=decrease,pad={W}:{H}:(ow-iw)/2:(oh-ih)/2,setsar=1,fps=30"
    run([*FFMPEG, "-f", "lavfi", "-i", f"color=c=black:s={W}x{H}:r=30:d=2",
         "-loop", "1", "-framerate", "30", "-t", "3", "-i", str(ASTRONAUT),
         "-loop", "1", "-framerate", "30", "-t", "2", "-i", str(ASTRONAUT),
         "-f", "lavfi", "-i", f"color=c=white:s={W}x{H}:r=30:d=2",
         "-filter_complex", f"[0]format=yuv420p[z];[1]{fit},format=yuv420p[a];[2]{fit},gblur=sigma=6,format=yuv420p[b];"
                            "[3]format=yuv420p[w];[z][a][b][w]concat=n=4:v=1:a=0[v]",
         "-map", "[v]", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p", "-colorspace", "bt709",
         str(path)])
    return path


def render(src: Path, registry: PackRegistry, tmp_path: Path, recipe: dict[str, object]) -> VideoJob:
    work = tmp_path / "work"
    work.mkdir(parents=True)
    prepare_workdir(src, work)
    job = VideoJob(source=work / "source", facts=probe_video(src), recipe=recipe_from_dict(recipe),
                   registry=registry, workdir=work, x264_preset="superfast")
    return run_video_pipeline(job)


def test_scores_rank_sharp_well_exposed_faces_away_from_cuts() -> None:
    with Image.open(ASTRONAUT) as img:
        portrait = np.asarray(img.convert("RGB").resize((320, 240)))
    with Image.open(ASTRONAUT.with_name("coffee.jpg")) as img:
        no_face = np.asarray(img.convert("RGB").resize((320, 240)))  # as sharp and bright, nobody in it
    blurred = np.asarray(Image.fromarray(portrait).resize((40, 30)).resize((320, 240), Image.Resampling.BILINEAR))
    black = np.zeros((240, 320, 3), np.uint8)
    frames = [black] * 4 + [portrait] * 6 + [blurred] * 4 + [no_face] * 4  # 2 fps: cuts at 2, 5 and 7 s
    scored = score_frames(frames, fps=2)
    assert all(s.scores["exposure"] == 0.0 for s in scored[:4])  # black frames are worthless
    # Next to a cut, a frame loses its distance score; half a second in, half of it.
    assert scored[4].scores["cut_distance"] == pytest.approx(0.25)
    assert scored[7].scores["cut_distance"] == 1.0
    assert scored[6].scores["sharpness"] > 3 * scored[11].scores["sharpness"]  # blur is seen
    best = best_candidates(scored, 3, min_gap=1.0)
    assert 2.5 <= best[0].time <= 4.5 and best[0].scores["faces"] > 0.5
    assert len({round(b.time) for b in best}) == 3  # spread out
    assert all(b.time >= 2.0 for b in best)


def test_video_pass_gives_scored_candidates_with_the_look_and_stickers(registry: PackRegistry,
                                                                       tmp_path: Path) -> None:
    src = shots_video(tmp_path / "shots.mp4")
    look = next(iter(registry.looks))
    sticker = next(iter(registry.stickers))
    job = render(src, registry, tmp_path, {"filter": {"id": look, "intensity": 1.0},
                                           "stickers": [{"id": sticker, "x": 0.9, "y": 0.85, "scale": 0.15}]})
    cands = [r for r in job.renditions if r.name.startswith("cover-")]
    assert len(cands) == 6
    infos = [job.outputs_info[c.name] for c in cands]
    assert [i["score"] for i in infos] == sorted((i["score"] for i in infos), reverse=True)
    assert all(i["role"] == "cover_candidate" for i in infos)
    best = infos[0]
    assert 2.5 <= best["time"] <= 4.5, infos
    assert best["scores"]["faces"] > 0.5
    assert all(not (i["time"] < 2.0) for i in infos[:3])  # no black frame among the best
    assert not (job.workdir / "cover_frames.rgb").exists()
    # The still is the edited video: the same pixels as the rendition's frame at that time, sticker included.
    still = np.asarray(Image.open(cands[0].path).convert("RGB")).astype(float)
    mp4 = next(r.path for r in job.renditions if r.name.endswith("p.mp4"))
    frame = frame_at(mp4, best["time"], size=(still.shape[1], still.shape[0])).astype(float)
    assert np.abs(still - frame).mean() < 6
    unedited = frame_at(src, best["time"], size=(still.shape[1], still.shape[0])).astype(float)
    corner = (slice(int(0.8 * still.shape[0]), int(0.9 * still.shape[0])),
              slice(int(0.86 * still.shape[1]), int(0.94 * still.shape[1])))
    assert np.abs(still[corner] - unedited[corner]).mean() > 20  # the sticker is there


def test_poster_cut_from_one_segment_is_the_frame_at_that_time(registry: PackRegistry, tmp_path: Path) -> None:
    src = make_video(tmp_path / "moving.mp4", width=W, height=H, seconds=6.0, video=f"testsrc2=s={W}x{H}:r=30")
    job = render(src, registry, tmp_path, {"cover": {"time": 0.5}})
    # Each candidate is the frame at its stated time (moving content: a frame off would show).
    mp4 = next(r.path for r in job.renditions if r.name.endswith("p.mp4"))
    for cand in (r for r in job.renditions if r.name.startswith("cover-")):
        t = job.outputs_info[cand.name]["time"]
        thumb = np.asarray(Image.open(cand.path).convert("RGB")).astype(float)
        assert np.abs(thumb - frame_at(mp4, t, size=(cand.width, cand.height))).mean() < 5, t
        assert np.abs(thumb - frame_at(mp4, t + 0.1, size=(cand.width, cand.height))).mean() > 6, t
    top = job.hls["variants"][0]["name"]
    playlist = job.workdir / "hls" / top
    for t in (3.4, 0.0, 5.96):
        uri, start, init = segment_at(playlist.read_text(), t)
        assert init is not None and start <= t
        cut = tmp_path / f"cut-{t}"
        cut.mkdir()
        with (cut / "segment.mp4").open("wb") as joined:
            for name in (init, uri):
                joined.write((playlist.parent / name).read_bytes())
        poster = poster_from_segment(cut / "segment.mp4", t - start, cut)
        assert (poster.webp.width, poster.webp.height) == (W, H) and poster.placeholder["blurhash"]
        got = np.asarray(Image.open(cut / "frame.png").convert("RGB")).astype(float)
        want = frame_at(mp4, min(t, 5.95)).astype(float)
        assert np.abs(got - want).mean() < 3, t  # (frame_at converts with swscale's default, less exact, flags)
        if t == 3.4:
            assert np.abs(got - frame_at(mp4, 3.3).astype(float)).mean() > 6  # the frame before would show
        shutil.rmtree(cut)


def test_segment_at_walks_the_playlist() -> None:
    text = ("#EXTM3U\n#EXT-X-MAP:URI=\"init.mp4\"\n#EXTINF:2.000000,\nseg_000.m4s\n#EXTINF:2.000000,\nseg_001.m4s\n"
            "#EXTINF:1.500000,\nseg_002.m4s\n#EXT-X-ENDLIST\n")
    assert segment_at(text, 0.0) == ("seg_000.m4s", 0.0, "init.mp4")
    assert segment_at(text, 3.99) == ("seg_001.m4s", 2.0, "init.mp4")
    assert segment_at(text, 4.0) == ("seg_002.m4s", 4.0, "init.mp4")
    assert segment_at(text, 99.0) == ("seg_002.m4s", 4.0, "init.mp4")
    with pytest.raises(ValueError):
        segment_at("#EXTM3U\n", 1.0)
