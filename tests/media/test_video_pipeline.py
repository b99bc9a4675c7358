"""The video pipeline with real ffmpeg on generated videos: what a viewer would see and hear."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

import numpy as np
import pytest
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab

from media_service.errors import VideoTooLong
from media_service.packs import PackRegistry, load_registry
from media_service.pipeline.image import ImageJob, run_image_pipeline
from media_service.pipeline.video import VideoJob, prepare_workdir, run_video_pipeline, video_ladder
from media_service.probe import probe_video
from media_service.recipe import recipe_from_dict
from tests.support.media import metadata_markers
from tests.support.packs import write_look_pack, write_music_pack, write_sticker_pack
from tests.support.video import (
    FFMPEG,
    audio_samples,
    band_level_db,
    frame_at,
    keyframe_times,
    loudness,
    make_video,
    probe,
    run,
    stream,
)

pytestmark = pytest.mark.media
MUSIC_HZ = 2500


@pytest.fixture(scope="module")
def registry(tmp_path_factory: pytest.TempPathFactory) -> PackRegistry:
    root = tmp_path_factory.mktemp("packs")
    return load_registry([write_look_pack(root / "f")], [write_sticker_pack(root / "s")],
                         [write_music_pack(root / "m", frequency=MUSIC_HZ, seconds=6)])


def render(src: Path, registry: PackRegistry, tmp_path: Path, recipe: dict[str, object] | None = None,
           progress: list[float] | None = None) -> VideoJob:
    work = tmp_path / "work"
    work.mkdir(parents=True)
    prepare_workdir(src, work)
    job = VideoJob(source=work / "source", facts=probe_video(src), recipe=recipe_from_dict(recipe or {}),
                   registry=registry, workdir=work, x264_preset="superfast",
                   progress=(progress.append if progress is not None else lambda _f: None))
    return run_video_pipeline(job)


def out(job: VideoJob, name: str) -> Path:
    return next(r.path for r in job.renditions if r.name == name)


def test_ladder_is_by_the_short_side_and_never_upscaled() -> None:
    assert [(r.name, r.width, r.height) for r in video_ladder(1080, 1920)] == [
        ("1080p", 1080, 1920), ("720p", 720, 1280), ("480p", 480, 854)]
    assert [(r.width, r.height) for r in video_ladder(1920, 1080)] == [(1920, 1080), (1280, 720), (854, 480)]
    assert [(r.width, r.height) for r in video_ladder(640, 360)] == [(640, 360)]
    assert [(r.width, r.height) for r in video_ladder(607, 1080)] == [(606, 1078), (480, 854)]


def test_portrait_phone_video_full_ladder_hls_poster_preview(registry: PackRegistry, tmp_path: Path) -> None:
    src = make_video(tmp_path / "in.mp4", width=1080, height=1920, seconds=4.5,
                     video="testsrc2=size=1080x1920:rate=30", extra=["-metadata", "location=+39.9+116.4/",
                                                                      "-metadata", "creation_time=2026-01-01"])
    progress: list[float] = []
    job = render(src, registry, tmp_path, {"aspect": "9:16", "cover": {"time": 1.0}}, progress)
    assert progress and progress == sorted(progress) and progress[-1] > 0.9
    keyframes = {}
    for name, (w, h) in {"1080p.mp4": (1080, 1920), "720p.mp4": (720, 1280), "480p.mp4": (480, 854)}.items():
        path = out(job, name)
        info = probe(path)
        v, a = stream(info, "video"), stream(info, "audio")
        assert v is not None and a is not None
        assert (v["width"], v["height"]) == (w, h)
        assert (v["codec_name"], v["profile"], v["pix_fmt"]) == ("h264", "High", "yuv420p")
        assert (v["color_space"], v["color_primaries"], v["color_transfer"], v["color_range"]) == \
            ("bt709", "bt709", "bt709", "tv")
        assert v["r_frame_rate"] == "30/1" and v["avg_frame_rate"] == "30/1"
        assert (a["codec_name"], a["profile"], a["sample_rate"], a["channels"]) == ("aac", "LC", "48000", 2)
        assert len([s for s in info["streams"]]) == 2
        assert abs(float(info["format"]["duration"]) - 4.5) <= 1 / 30 + 0.025
        assert "location" not in str(info["format"].get("tags", {})) and "creation_time" not in str(info)
        data = path.read_bytes()
        assert data.find(b"moov") < data.find(b"mdat")  # faststart
        keyframes[name] = keyframe_times(path)
        assert job.outputs_info[name]["bitrate"] > 0
    assert keyframes["1080p.mp4"] == keyframes["720p.mp4"] == keyframes["480p.mp4"] == [0.0, 2.0, 4.0]

    master = (job.workdir / "hls" / "master.m3u8").read_text()
    variants = re.findall(r"#EXT-X-STREAM-INF:(.*)\n(.*)", master)
    assert len(variants) == 3
    for attrs, uri in variants:
        assert re.search(r"BANDWIDTH=\d+", attrs) and re.search(r"RESOLUTION=\d+x\d+", attrs)
        assert 'CODECS="avc1.64' in attrs and "mp4a.40.2" in attrs
        playlist = job.workdir / "hls" / uri
        text = playlist.read_text()
        assert "#EXT-X-PLAYLIST-TYPE:VOD" in text and '#EXT-X-MAP:URI="init.mp4"' in text
        segments = [line for line in text.splitlines() if line.endswith(".m4s")]
        assert len(segments) == 3  # 2 s segments, aligned with the keyframes
        # Every segment decodes: play the variant playlist through to the end.
        run([*FFMPEG, "-protocol_whitelist", "file", "-i", str(playlist), "-f", "null", "-"])
    poster = Image.open(out(job, "poster.webp"))
    assert poster.size == (1080, 1920) and Image.open(out(job, "poster.jpg")).size == (1080, 1920)
    preview = Image.open(out(job, "preview.webp"))
    assert getattr(preview, "n_frames", 1) >= 30 and preview.size == (360, 640)
    for r in job.renditions:
        assert metadata_markers(r.path.read_bytes()) == []


def test_rotation_tag_comes_out_upright(registry: PackRegistry, tmp_path: Path) -> None:
    # Coded landscape HEVC with a rotation tag, as an iPhone writes a portrait video.
    src = make_video(tmp_path / "rot.mp4", width=640, height=360, seconds=1.5, codec="libx265", rotate=90)
    facts = probe_video(src)
    assert (facts.width, facts.height) == (360, 640)
    job = render(src, registry, tmp_path)
    info = probe(out(job, "360p.mp4"))
    v = stream(info, "video")
    assert v is not None and (v["width"], v["height"]) == (360, 640)
    assert "side_data_list" not in v  # no rotation left for a player to apply twice
    # What a player shows for the source (it honours the tag) is what our file shows without one.
    shown = subprocess.run([*FFMPEG, "-ss", "0.5", "-i", str(src), "-frames:v", "1", "-vf",
                            "scale=in_color_matrix=bt709:in_range=tv,format=rgb24", "-f", "rawvideo", "-"],
                           check=True, capture_output=True).stdout
    expected = np.frombuffer(shown, dtype=np.uint8).reshape(640, 360, 3).astype(int)
    ours = frame_at(out(job, "360p.mp4"), 0.5).astype(int)
    assert np.abs(ours - expected)[20:-20, 20:-20].mean() < 6


def test_vfr_becomes_cfr_without_drift(registry: PackRegistry, tmp_path: Path) -> None:
    # 30 fps for 2 s, then 15 fps: a phone dropping frames in low light.
    src = make_video(tmp_path / "vfr.mp4", seconds=4, extra=[
        "-vf", "setpts='if(lt(N,60),N/(30*TB),(2+(N-60)/15)/TB)'", "-fps_mode", "vfr"])
    assert probe_video(src).vfr
    job = render(src, registry, tmp_path)
    info = probe(out(job, "480p.mp4"))
    v, a = stream(info, "video"), stream(info, "audio")
    assert v is not None and a is not None
    assert v["r_frame_rate"] == v["avg_frame_rate"] == "30/1"
    assert abs(int(v["nb_frames"]) - 120) <= 1
    assert abs(float(v["duration"]) - float(a["duration"])) <= 1 / 30
    assert abs(float(v["start_time"]) - float(a["start_time"])) <= 1 / 30


def test_hdr_pq_is_tone_mapped_to_sdr(registry: PackRegistry, tmp_path: Path) -> None:
    src = tmp_path / "hdr.mp4"
    run([*FFMPEG, "-f", "lavfi", "-i", "smptehdbars=size=640x360:rate=30", "-t", "1", "-vf", "format=yuv420p10le",
         "-c:v", "libx265", "-preset", "ultrafast", "-x265-params", "log-level=error", "-color_primaries", "bt2020",
         "-color_trc", "smpte2084", "-colorspace", "bt2020nc", "-tag:v", "hvc1", str(src)])
    facts = probe_video(src)
    assert facts.hdr and facts.bit_depth == 10
    job = render(src, registry, tmp_path)
    v = stream(probe(out(job, "360p.mp4")), "video")
    assert v is not None and v["pix_fmt"] == "yuv420p" and v["color_transfer"] == "bt709"
    ours = frame_at(out(job, "360p.mp4"), 0.5).astype(float)
    # Shown naively (PQ code values taken as BT.709), the bars look grey and flat ("washed out").
    naive = frame_at(src, 0.5, size=(640, 360)).astype(float)
    assert ours.std() > naive.std() * 1.1
    saturation = (ours.max(axis=2) - ours.min(axis=2)).mean()
    assert saturation > (naive.max(axis=2) - naive.min(axis=2)).mean()


def test_no_audio_stays_silent_music_is_heard(registry: PackRegistry, tmp_path: Path) -> None:
    src = make_video(tmp_path / "mute.mp4", seconds=2, audio=None)
    job = render(src, registry, tmp_path / "a")
    info = probe(out(job, "480p.mp4"))
    assert stream(info, "audio") is None  # no fake silent track: nothing to play, nothing to download
    assert "mp4a" not in (job.workdir / "hls" / "master.m3u8").read_text()

    job = render(src, registry, tmp_path / "b", {"music": {"id": "tmusic/tone", "volume": 1.0}})
    path = out(job, "480p.mp4")
    a = stream(probe(path), "audio")
    assert a is not None
    samples = audio_samples(path)
    assert band_level_db(samples, 48000, MUSIC_HZ, 0.5, 1.5) > band_level_db(samples, 48000, 1000, 0.5, 1.5) + 30


def test_music_ducks_under_speech_and_loudness_is_normalised(registry: PackRegistry, tmp_path: Path) -> None:
    # The original: a 700 Hz "voice" for the first 2 s, silence for the next 2 s.
    src = make_video(tmp_path / "talk.mp4", seconds=4, audio="sine=frequency=700:sample_rate=48000,"
                     "volume='if(lt(t,2),1,0)':eval=frame")
    recipe = {"music": {"id": "tmusic/tone", "volume": 0.5, "original_volume": 1.0, "duck": True}}
    job = render(src, registry, tmp_path, recipe)
    path = out(job, "480p.mp4")
    samples = audio_samples(path)
    during_speech = band_level_db(samples, 48000, MUSIC_HZ, 0.6, 1.8)
    after_speech = band_level_db(samples, 48000, MUSIC_HZ, 2.6, 3.8)
    assert after_speech - during_speech > 6  # the music comes back up when the voice stops
    assert band_level_db(samples, 48000, 700, 0.6, 1.8) > band_level_db(samples, 48000, 700, 2.6, 3.8) + 30
    integrated, peak = loudness(path)
    assert abs(integrated - (-14.0)) <= 1.0
    assert peak <= -1.0


def test_original_volume_zero_replaces_the_sound(registry: PackRegistry, tmp_path: Path) -> None:
    src = make_video(tmp_path / "v.mp4", seconds=2, audio="sine=frequency=700:sample_rate=48000")
    job = render(src, registry, tmp_path, {"music": {"id": "tmusic/tone", "original_volume": 0, "fade_in": 0.5}})
    samples = audio_samples(out(job, "480p.mp4"))
    assert band_level_db(samples, 48000, 700, 0.6, 1.6) < band_level_db(samples, 48000, MUSIC_HZ, 0.6, 1.6) - 40
    # The fade-in: quieter in the first 0.1 s than after it.
    assert band_level_db(samples, 48000, MUSIC_HZ, 0.0, 0.1) < band_level_db(samples, 48000, MUSIC_HZ, 0.6, 0.7) - 6


def test_timed_sticker_in_and_out_of_its_window(registry: PackRegistry, tmp_path: Path) -> None:
    grey = "color=c=0x808080:s=480x854:r=30"
    src = make_video(tmp_path / "g.mp4", seconds=3, video=grey)
    recipe = {"stickers": [{"id": "tstickers/red", "x": 0.5, "y": 0.25, "scale": 0.5, "start": 1.0, "end": 2.0}]}
    job = render(src, registry, tmp_path, recipe)
    path = out(job, "480p.mp4")
    # 200×100 sticker at 50% of 480 → 240×120 centred at (240, 213).
    inside = (slice(213 - 40, 213 + 40), slice(240 - 90, 240 + 90))
    outside = (slice(213 + 80, 213 + 120), slice(240 - 90, 240 + 90))
    before, during, after = (frame_at(path, t).astype(float) for t in (0.5, 1.5, 2.5))
    assert during[inside][..., 0].mean() > 200 and during[inside][..., 1].mean() < 60
    for frame in (before, after):
        assert abs(frame[inside].mean() - 128) < 8
    assert abs(during[outside].mean() - 128) < 8


def test_look_matches_the_photo_renderer(registry: PackRegistry, tmp_path: Path) -> None:
    """The same frame through the photo path and the video path, compared before lossy encoding."""
    still = tmp_path / "still.png"
    y, x = np.mgrid[0:360, 0:640]
    arr = np.stack([x * 255 // 640, y * 255 // 360, 255 - (x + y) * 255 // 1000], axis=-1).astype(np.uint8)
    arr[100:200, 100:250] = (224, 172, 140)  # a skin tone
    arr[220:320, 350:560] = (90, 160, 230)  # sky blue
    Image.fromarray(arr).save(still)
    src = tmp_path / "still.mp4"
    # Near-lossless 4:4:4 BT.709 so the only difference left is the renderers'.
    run([*FFMPEG, "-loop", "1", "-i", str(still), "-t", "1", "-r", "30", "-vf",
         "scale=out_color_matrix=bt709:out_range=tv,format=yuv444p", "-c:v", "libx264", "-qp", "0",
         "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", str(src)])
    recipe = {"filter": {"id": "tlooks/warm", "intensity": 0.8}, "cover": {"time": 0.5}}
    video = np.asarray(Image.open(render(src, registry, tmp_path / "v", recipe).workdir / "poster.png")
                       .convert("RGB"), dtype=float) / 255
    (tmp_path / "p").mkdir()
    photo_job = ImageJob(source=still, recipe=recipe_from_dict({"filter": recipe["filter"]}), registry=registry,
                         workdir=tmp_path / "p")
    from media_service.pipeline.image import IMAGE_STEPS, render_ladder

    run_image_pipeline(photo_job, [s for s in IMAGE_STEPS if s is not render_ladder][:-1])
    photo = np.asarray(photo_job.img.convert("RGB"), dtype=float) / 255
    assert photo.shape == video.shape
    delta = deltaE_ciede2000(rgb2lab(photo), rgb2lab(video))
    assert delta.mean() < 1.5, delta.mean()
    # And the look did something: the video frame is far from the untouched still.
    assert deltaE_ciede2000(rgb2lab(arr / 255), rgb2lab(video)).mean() > 3


def test_trim_and_too_long(registry: PackRegistry, tmp_path: Path) -> None:
    src = make_video(tmp_path / "long.mp4", seconds=5, video="testsrc2=size=320x240:rate=30")
    job = render(src, registry, tmp_path, {"trim": {"start": 1.0, "end": 3.0}})
    info = probe(out(job, "240p.mp4"))
    assert abs(float(info["format"]["duration"]) - 2.0) <= 1 / 30 + 0.025
    facts = probe_video(src)
    with pytest.raises(VideoTooLong):
        from media_service.recipe import output_window

        output_window(recipe_from_dict({}), facts.duration, max_seconds=4)


def test_animated_sticker_loops_in_its_window(tmp_path: Path) -> None:
    repo = Path(__file__).resolve().parents[2]
    registry = load_registry([], [repo / "stickers"])
    assert registry.stickers["animated/heart-beat"].animated
    src = make_video(tmp_path / "g.mp4", seconds=5, video="color=c=0x808080:s=480x854:r=30", audio=None)
    recipe = {"stickers": [{"id": "animated/heart-beat", "x": 0.5, "y": 0.5, "scale": 0.5, "start": 1.0, "end": 4.0}]}
    path = out(render(src, registry, tmp_path, recipe), "480p.mp4")

    def heart_pixels(t: float) -> int:
        frame = frame_at(path, t).astype(int)
        red = (frame[..., 0] > 180) & (frame[..., 1] < 120)
        return int(red.sum())

    period = 16 * 0.070  # 16 frames of 70 ms
    assert heart_pixels(0.5) == 0 and heart_pixels(4.5) == 0  # outside its window
    sizes = [heart_pixels(1.0 + k * period / 8) for k in range(8)]
    assert min(sizes) > 1000 and max(sizes) > min(sizes) * 1.15  # it beats
    again = [heart_pixels(1.0 + period + k * period / 8) for k in range(8)]
    assert all(abs(a - b) <= 0.1 * b for a, b in zip(again, sizes, strict=True))  # and loops


def test_music_loop_region_repeats_without_the_intro(tmp_path: Path) -> None:
    pack = tmp_path / "m" / "lp"
    pack.mkdir(parents=True)
    # 2 s of 1 kHz "intro", then 4 s of 2.5 kHz; the designer marks 2–6 s as the loop.
    run([*FFMPEG, "-f", "lavfi", "-i", "sine=f=1000:d=2", "-f", "lavfi", "-i", "sine=f=2500:d=4", "-filter_complex",
         "[0][1]concat=n=2:v=0:a=1", "-ac", "2", "-c:a", "libvorbis", str(pack / "t.ogg")])
    (pack / "pack.toml").write_text(
        '[pack]\nid = "lp"\nversion = "1.0.0"\ntitle = { en = "L", zh = "循环" }\nauthor = "t"\nlicense = "CC0-1.0"\n'
        '\n[[tracks]]\nid = "t"\ntitle = { en = "T", zh = "曲" }\nartist = "t"\nfile = "t.ogg"\nlicense = "CC0-1.0"\n'
        'source = "test"\nloop = { start = 2.0, end = 6.0 }\n')
    registry = load_registry([], [], [tmp_path / "m"])
    assert registry.tracks["lp/t"].loop == (2.0, 6.0)
    src = make_video(tmp_path / "v.mp4", seconds=12, audio=None, video="color=c=gray:s=160x120:r=10")
    samples = audio_samples(out(render(src, registry, tmp_path, {"music": {"id": "lp/t"}}), "120p.mp4"))
    intro = [band_level_db(samples, 48000, 1000, t, t + 1) for t in range(12)]
    body = [band_level_db(samples, 48000, 2500, t, t + 1) for t in range(12)]
    assert all(intro[t] > body[t] + 40 for t in (0, 1))
    assert all(body[t] > intro[t] + 40 for t in range(2, 12))  # never back to the intro


def test_music_alone_is_normalised_from_the_stored_loudness(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Music only (no original sound): no analysis pass; the pack's stored blocks give the mix's loudness,
    and the result still lands on −14 LUFS with the true peak under −1 dBTP — looped, offset and faded."""
    import media_service.pipeline.video as video

    pack = tmp_path / "m" / "pulse"
    pack.mkdir(parents=True)
    # 5 s that are not flat: 2 s loud, 3 s 12 dB quieter, so the offset and the loop matter.
    run([*FFMPEG, "-f", "lavfi", "-i", "sine=f=2500:d=2", "-f", "lavfi", "-i", "sine=f=2500:d=3,volume=0.25",
         "-filter_complex", "[0][1]concat=n=2:v=0:a=1", "-ac", "2", "-c:a", "libvorbis", str(pack / "p.ogg")])
    (pack / "pack.toml").write_text(
        '[pack]\nid = "pulse"\nversion = "1.0.0"\ntitle = { en = "P", zh = "脉" }\nauthor = "t"\nlicense = "CC0-1.0"\n'
        '\n[[tracks]]\nid = "p"\ntitle = { en = "P", zh = "曲" }\nartist = "t"\nfile = "p.ogg"\nlicense = "CC0-1.0"\n'
        'source = "test"\n')
    registry = load_registry([], [], [tmp_path / "m"])
    calls: list[list[str]] = []
    real = video.run_tool
    monkeypatch.setattr(video, "run_tool", lambda argv, **kw: calls.append(list(argv)) or real(argv, **kw))
    src = make_video(tmp_path / "v.mp4", seconds=11, audio=None, video="color=c=gray:s=160x120:r=10")
    recipe = {"music": {"id": "pulse/p", "volume": 0.3, "offset": 1.5, "fade_in": 1.0, "fade_out": 2.0}}
    job = render(src, registry, tmp_path, recipe)
    assert not any("ebur128" in " ".join(argv) for argv in calls)  # no analysis pass
    assert len(calls) == 1  # the one encode
    integrated, peak = loudness(out(job, "120p.mp4"))
    assert abs(integrated - (-14.0)) <= 1.0, integrated
    assert peak <= -1.0


def test_tracks_are_levelled_before_the_volume(registry: PackRegistry) -> None:
    from media_service.pipeline.video import MUSIC_REFERENCE_LUFS, music_gain

    track = registry.tracks["tmusic/tone"]
    gain_db = 20 * np.log10(music_gain(track.loudness, 1.0))
    assert track.loudness.integrated + gain_db == pytest.approx(MUSIC_REFERENCE_LUFS, abs=0.01)
    assert music_gain(track.loudness, 0.5) == pytest.approx(music_gain(track.loudness, 1.0) / 2)
