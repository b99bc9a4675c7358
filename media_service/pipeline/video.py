"""The video pipeline: steps add nodes to ONE ffmpeg graph, which runs once.

One decode; crop, scale, look and stickers once at the top rung's size; a ``split`` to every rung, the
poster and the preview; the audio mix and loudness in the same graph; each rung encoded once and written
to its MP4 and its HLS variant at the same time (the tee muxer). The only other ffmpeg run is an
audio-only loudness analysis of the same audio graph (no video is decoded there), so that the main pass
can normalise linearly, as broadcast tools do, instead of guessing with a dynamic compressor.
"""

from __future__ import annotations

import math
import os
import re
import shutil
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ffmpeg
import numpy as np
from PIL import Image

from media_service import geometry
from media_service.errors import CorruptMedia, MediaError
from media_service.ffmpeg.classify import classify
from media_service.ffmpeg.hls import Variant, avc_codec_from_mp4, master_playlist, segment_stats
from media_service.ffmpeg.runner import ResourceLimits, run_tool
from media_service.ffmpeg.safety import AUDIO_DEMUXERS, input_options
from media_service.imaging.cover_score import best_candidates, score_frames
from media_service.imaging.encode import encode_jpeg, encode_webp
from media_service.imaging.overlay import render_sticker
from media_service.imaging.placeholder import blurhash, dominant_color
from media_service.limits import DEFAULT_LIMITS, Limits
from media_service.packs import PackRegistry
from media_service.packs.loudness import STEP, Loudness, excerpt
from media_service.pipeline.image import Rendition
from media_service.pipeline.stickers import placed_sticker
from media_service.probe import VideoFacts
from media_service.recipe import Recipe, output_window

RUNGS: tuple[int, ...] = (1080, 720, 480)  # the short side
MAX_FPS = 30.0
GOP_SECONDS = 2
LOUDNESS_TARGET = -14.0
TRUE_PEAK_TARGET = -1.5  # AAC encoding adds a little overshoot; −1.5 keeps the result ≤ −1 dBTP
LRA_TARGET = 11.0
# Tracks are levelled to this before the recipe's volume, so that "volume": 0.8 means the same on every track
# (from the loudness measured at validation; a quiet acoustic track and a loud EDM one sit alike under a voice).
MUSIC_REFERENCE_LUFS = -20.0
MAX_MUSIC_GAIN_DB = 12.0
PREVIEW_SECONDS = 3.0
PREVIEW_FPS = 12
PREVIEW_SHORT_SIDE = 360
# Cover candidates: the edited video sampled this often, this small, scored after the pass (imaging/cover_score).
COVER_SAMPLE_FPS = 2
COVER_SHORT_SIDE = 320
COVER_CANDIDATES = 6
COVER_MIN_GAP_SECONDS = 1.0
COVER_FRAMES_FILE = "cover_frames.rgb"
X264_PRESET = "veryfast"
# On top of the preset, per short side: superfast's motion search (diamond) and partitions (no inter
# sub-partitions) with veryfast's macroblock-tree rate control (10 frames of lookahead). On the phone-like
# bench clip that alone is ≈20% less x264 CPU than plain veryfast at the same bytes and 720p SSIM. The 1080p
# and 720p rungs, ≈85% of the encoding work, also refine subpel once instead of twice (subme=1, i.e.
# superfast with veryfast's rate control): ≈20–25% less again on those rungs, for ≈3% (1080p) and ≈8% (720p)
# more bytes at the same 720p SSIM. The 480p rung keeps subme=2: it saves little CPU there and is what
# slow networks get. The lookahead is 8 frames, not 10: each frame it holds is ≈6 MB at 1080p in every
# encoder, and a long video's two pieces (pipeline/pieces.py) hold theirs at once (≈45 MB less in all).
X264_TUNING = "me=dia:partitions=i8x8,i4x4:rc-lookahead=8"
X264_PARAMS: dict[int, str] = {1080: f"{X264_TUNING}:subme=1", 720: f"{X264_TUNING}:subme=1", 480: X264_TUNING}
# (CRF, maxrate kb/s) per short side: CRF for quality, capped so a noisy clip cannot explode the size.
RATE_CONTROL = {1080: (23, 5000), 720: (23, 2800), 480: (24, 1400)}
AUDIO_BITRATE = "128k"


@dataclass(frozen=True)
class Rung:
    short: int
    width: int
    height: int

    @property
    def name(self) -> str:
        return f"{self.short}p"


def video_ladder(width: int, height: int, rungs: tuple[int, ...] = RUNGS) -> list[Rung]:
    """Rungs by the short side, never upscaled; a source whose short side is between rungs is also
    served at its own size (as photos are). Dimensions are even, as H.264 4:2:0 needs."""
    short, long_ = min(width, height), max(width, height)
    out: list[Rung] = []
    for target in geometry.ladder(geometry.even_floor(short), rungs):
        s = geometry.even_floor(target)
        lng = min(geometry.even(long_ * s / short), geometry.even_floor(long_))
        w, h = (s, lng) if width <= height else (lng, s)
        out.append(Rung(s, w, h))
    return out


def output_fps(facts: VideoFacts) -> float:
    """The constant output rate: the source's own (its nominal rate when it is variable, as phones record
    30 fps nominal and drop frames in the dark), halved until it is at most 30."""
    fps = facts.nominal_fps if facts.vfr and 1.0 <= facts.nominal_fps <= 240.0 else facts.fps
    fps = fps if 1.0 <= fps <= 240.0 else 30.0
    if abs(fps - round(fps)) < 0.02:
        fps = float(round(fps))
    while fps > MAX_FPS + 0.5:
        fps /= 2  # 60 → 30, 120 → 30: whole-frame decimation, no judder
    return round(fps, 3)


@dataclass
class VideoJob:
    source: Path
    facts: VideoFacts
    recipe: Recipe
    registry: PackRegistry
    workdir: Path
    limits: Limits = DEFAULT_LIMITS
    progress: Callable[[float], None] = lambda _fraction: None
    should_stop: Callable[[], bool] = lambda: False  # the job was cancelled: ffmpeg is killed within 0.5 s
    x264_preset: str = X264_PRESET
    # -x264-params per rung (short side; others get X264_TUNING); {} for the plain preset.
    x264_params: dict[int, str] = field(default_factory=lambda: dict(X264_PARAMS))
    # 0: ffmpeg decides; 1: one thread for the decoder, the filter graph and every encoder (the pieces of
    # pipeline/pieces.py, one process per core: threads there only add overhead and memory); else the encoders'.
    threads: int = 0
    cover_candidates: bool = True  # sample the edited video for cover candidates (the stills-only render: no)

    # Planned by the steps.
    start: float = 0.0
    duration: float = 0.0
    fps: float = 30.0
    crop: geometry.Box | None = None
    top: tuple[int, int] = (0, 0)
    rungs: list[Rung] = field(default_factory=list)
    inputs: list[Any] = field(default_factory=list)
    video: Any = None  # the graph's video node at the top rung's size, edited
    audio: Any = None
    audio_chain: Callable[[Any], Any] | None = None
    loudness: dict[str, float] | None = None
    argv: list[str] = field(default_factory=list)

    # Results.
    renditions: list[Rendition] = field(default_factory=list)
    hls: dict[str, Any] = field(default_factory=dict)
    placeholder: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)
    outputs_info: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def cover_time(self) -> float:
        t = self.recipe.cover.time if self.recipe.cover else 0.0
        return min(t, max(0.0, self.duration - 1.0 / self.fps))


# --- planning steps: each adds to the graph -------------------------------------------------------


def plan_window(job: VideoJob) -> None:
    job.start, job.duration = output_window(job.recipe, job.facts.duration, job.limits.max_video_seconds)
    job.fps = output_fps(job.facts)


def plan_source(job: VideoJob) -> None:
    decoder = {"threads": 1} if job.threads == 1 else {}
    src = ffmpeg.input("source", ss=f"{job.start:.3f}", t=f"{job.duration:.3f}", **decoder, **input_options())
    job.inputs.append(src)
    v = src.video
    f = job.facts
    if f.hdr:
        # PQ/HLG to SDR BT.709: linear light, BT.709 primaries, Hable curve; otherwise it looks washed out.
        v = (v.filter("zscale", t="linear", npl=100).filter("format", "gbrpf32le").filter("zscale", p="bt709")
             .filter("tonemap", tonemap="hable", desat=0).filter("zscale", t="bt709", m="bt709", r="tv")
             .filter("format", "yuv420p"))
    # Constant frame rate from here on: VFR phone video is resampled by timestamps, so audio stays in sync.
    v = v.filter("fps", fps=job.fps, round="near")
    job.video = v


def plan_crop(job: VideoJob) -> None:
    f = job.facts
    job.crop = geometry.aspect_crop(f.width, f.height, job.recipe.aspect.ratio())
    if (job.crop.width, job.crop.height) != (f.width, f.height):
        job.video = job.video.filter("crop", job.crop.width, job.crop.height, job.crop.left, job.crop.top)
    job.rungs = video_ladder(job.crop.width, job.crop.height)
    top = job.rungs[0]
    job.top = (top.width, top.height)


def _source_matrix(f: VideoFacts) -> str:
    if f.hdr:
        return "bt709"  # tone mapping above already wrote BT.709
    return "bt601" if f.color_space in ("smpte170m", "bt470bg") else "bt709"


def plan_top_scale(job: VideoJob) -> None:
    w, h = job.top
    f = job.facts
    if job.recipe.filter is not None:
        # The look is defined in RGB: convert with the source's real matrix and range, or the same look
        # renders two different colours on a photo and on a video. Planar 16-bit RGB: lut3d runs it as fast as
        # float, and each frame in flight is half the size.
        # zimg, not swscale: exact (swscale's YUV→float reads ≈0.5 level low) and slice-threaded, where
        # swscale runs on ffmpeg's one filter thread. At the source's own size only the chroma is resampled
        # (4:2:0 → RGB): bilinear, as JPEG decoders upsample it for the photo path; a real resize is lanczos.
        crop = job.crop or geometry.Box(0, 0, f.width, f.height)
        job.video = job.video.filter("zscale", w, h, f="bilinear" if (crop.width, crop.height) == (w, h) else "lanczos",
                                     min=_zscale_matrix(f), rin="full" if f.color_range == "pc" else "limited"
                                     ).filter("format", "gbrp16le")
    else:
        job.video = job.video.filter("scale", w, h, flags="lanczos")


def _zscale_matrix(f: VideoFacts) -> str:
    return {"bt709": "709", "bt601": "170m"}[_source_matrix(f)]


def plan_look(job: VideoJob) -> None:
    spec = job.recipe.filter
    if spec is None:
        return
    lut = job.registry.look_lut(spec.id, spec.intensity)
    path = job.workdir / "look.cube"
    rows = "\n".join(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in lut.table.reshape(-1, 3))
    path.write_text(f"LUT_3D_SIZE {lut.size}\n{rows}\n")
    # Tetrahedral takes lut3d's fast planar path (≈3× faster than trilinear here); on a smooth
    # 33³ table it differs from Pillow's trilinear by far less than the ΔE the parity test allows.
    # Then straight back to 4:2:0 BT.709: everything after (stickers, split, rungs) is cheap in YUV.
    # zimg (zscale) converts planar RGB back to 4:2:0 BT.709 in ≈⅔ of swscale's time.
    job.video = (job.video.filter("lut3d", file="look.cube", interp="tetrahedral")
                 .filter("zscale", m="bt709", r="tv", c="center").filter("format", "yuv420p"))


def _sticker_to_yuv(node: Any) -> Any:
    # Stickers are RGBA: converted with the output's matrix, so they keep their colour in the video.
    return node.filter("scale", out_color_matrix="bt709", out_range="tv").filter("format", "yuva420p")


def plan_stickers(job: VideoJob) -> None:
    w, h = job.top
    for i, s in enumerate(job.recipe.stickers):
        placed = placed_sticker(job.registry, s)
        # The same code as photos scales, turns and fades the sticker, at the frame's real size.
        art, (left, top) = render_sticker(placed, w, h)
        options: dict[str, Any] = {"x": left, "y": top, "format": "yuv420", "eof_action": "repeat"}
        start = s.start or 0.0
        if s.start is not None or s.end is not None:
            end = s.end if s.end is not None else job.duration + 1
            options["enable"] = f"between(t,{start:.3f},{end:.3f})"
        if job.registry.stickers[s.id].animated:
            # Every frame through the same transform, as a looping APNG that starts at the window's start.
            frames = [(render_sticker(placed_sticker(job.registry, s, frame), w, h)[0],
                       duration) for frame, duration in job.registry.sticker_frames(s.id)]
            name = f"sticker{i}.apng"
            frames[0][0].save(job.workdir / name, "PNG", save_all=True, append_images=[f for f, _ in frames[1:]],
                              duration=[d for _, d in frames], loop=0, disposal=1, blend=0, compress_level=1)
            sticker_input = ffmpeg.input(name, f="apng", ignore_loop=0, **input_options("apng"))
            sticker = _sticker_to_yuv(sticker_input.video.filter("setpts", f"PTS-STARTPTS+{start:.3f}/TB"))
            options |= {"eof_action": "pass", "shortest": 1}
        else:
            name = f"sticker{i}.png"
            art.save(job.workdir / name, "PNG", compress_level=1)
            sticker_input = ffmpeg.input(name, **input_options("png_pipe,image2"))
            sticker = _sticker_to_yuv(sticker_input.video)
        job.inputs.append(sticker_input)
        job.video = ffmpeg.overlay(job.video, sticker, **options)


def _music_stream(name: str, track_seconds: float, loop: tuple[float, float] | None, offset: float,
                  duration: float) -> Any:
    """The track from ``offset``, exactly ``duration`` long: the whole track repeats when it is shorter, or,
    when the designer marked a loop region, the intro plays once and then the region repeats seamlessly."""
    if loop is None:
        m_in = ffmpeg.input(name, stream_loop=-1, ss=f"{offset % max(track_seconds, 1):.3f}",
                            **input_options(AUDIO_DEMUXERS))
        stream = m_in.audio
    else:
        loop_start, loop_end = loop
        start = offset if offset < loop_end else loop_start
        parts = ffmpeg.input(name, **input_options(AUDIO_DEMUXERS)).audio.filter("aresample", 48000).asplit()
        intro = parts[0].filter("atrim", start=f"{start:.3f}", end=f"{loop_end:.3f}").filter("asetpts", "N/SR/TB")
        samples = max(1, round((loop_end - loop_start) * 48000))
        # aloop holds the region in memory: at most 10 min of 48 kHz stereo float, bounded by the pack's caps.
        region = (parts[1].filter("atrim", start=f"{loop_start:.3f}", end=f"{loop_end:.3f}")
                  .filter("asetpts", "N/SR/TB").filter("aloop", loop=-1, size=samples))
        stream = ffmpeg.concat(intro, region, v=0, a=1)
    return stream.filter("atrim", duration=f"{duration:.3f}").filter("asetpts", "N/SR/TB").filter("aresample", 48000)


def _audio_graph(job: VideoJob, src: Any) -> Any:
    """The mix as a function of the source input node, so the analysis pass builds the same graph."""
    f, music = job.facts, job.recipe.music
    fmt = {"sample_fmts": "fltp", "channel_layouts": "stereo"}
    original = None
    if f.has_audio and (music is None or music.original_volume > 0):
        original = src.audio.filter("aresample", 48000).filter("aformat", **fmt)
        if music is not None and music.original_volume != 1.0:
            original = original.filter("volume", music.original_volume)
    if music is None:
        mixed = original
    else:
        track = job.registry.tracks[music.id]
        name = "music" + track.path.suffix.lower()
        if not (job.workdir / name).exists():
            os.symlink(track.path, job.workdir / name)
        m = _music_stream(name, track.duration, track.loop, music.offset, job.duration)
        m = m.filter("aformat", **fmt).filter("volume", f"{music_gain(track.loudness, music.volume):.6f}")
        if music.fade_in > 0:
            m = m.filter("afade", t="in", st=0, d=min(music.fade_in, job.duration))
        if music.fade_out > 0:
            fade = min(music.fade_out, job.duration)
            m = m.filter("afade", t="out", st=f"{job.duration - fade:.3f}", d=fade)
        if original is not None and music.duck:
            # Ducking: the music is compressed whenever the original's speech band is loud.
            parts = original.asplit()
            original = parts[0]
            voice = parts[1].filter("highpass", f=200).filter("lowpass", f=3400)
            m = ffmpeg.filter([m, voice], "sidechaincompress", threshold=0.015, ratio=8, attack=15, release=350,
                              knee=2)
        mixed = m if original is None else ffmpeg.filter([original, m], "amix", inputs=2, duration="first",
                                                         dropout_transition=0, normalize=0)
    if mixed is None:
        return None
    # Exactly the video's length: padded if the source's audio ends early, cut if it runs on.
    return mixed.filter("apad").filter("atrim", duration=f"{job.duration:.3f}").filter("asetpts", "N/SR/TB")


def music_gain(loudness: Loudness, volume: float) -> float:
    """The recipe's volume on top of levelling the track to MUSIC_REFERENCE_LUFS (boost capped: a very quiet
    track is not lifted into its own noise)."""
    level_db = min(MAX_MUSIC_GAIN_DB, MUSIC_REFERENCE_LUFS - loudness.integrated)
    return float(volume * 10 ** (level_db / 20))


def _source_time(t: float, track_seconds: float, loop: tuple[float, float] | None, offset: float) -> float:
    """Where in the track the music is at output time ``t`` (as _music_stream plays it)."""
    if loop is None:
        return (offset % max(track_seconds, 1) + t) % track_seconds
    loop_start, loop_end = loop
    start = offset if offset < loop_end else loop_start
    if start + t < loop_end:
        return start + t
    return loop_start + (start + t - loop_end) % (loop_end - loop_start)


def _fade_db(t: float, duration: float, fade_in: float, fade_out: float) -> float:
    gain = 1.0
    if fade_in > 0 and t < fade_in:
        gain *= t / fade_in
    if fade_out > 0 and t > duration - fade_out:
        gain *= max(0.0, duration - t) / fade_out
    return 20 * math.log10(gain) if gain > 0 else -120.0


def music_only_loudness(job: VideoJob) -> dict[str, float] | None:
    """The mix's loudness without decoding anything, when the music is all of it: from the track's stored
    100 ms blocks, looped, offset, levelled and faded as the graph will play it."""
    music, f = job.recipe.music, job.facts
    if music is None or (f.has_audio and music.original_volume > 0):
        return None
    track = job.registry.tracks[music.id]
    gain_db = 20 * math.log10(max(music_gain(track.loudness, music.volume), 1e-6))
    times = [STEP * (k + 1) for k in range(max(1, int(job.duration / STEP)))]
    sources = [_source_time(t, track.duration, track.loop, music.offset) for t in times]
    gains = [gain_db + _fade_db(t, job.duration, music.fade_in, music.fade_out) for t in times]
    measured = excerpt(track.loudness, sources, gains)
    return {"input_i": measured.integrated, "input_tp": measured.true_peak, "input_lra": measured.lra,
            "input_thresh": measured.threshold, "target_offset": 0.0}


def analyse_loudness(job: VideoJob) -> None:
    """Audio-only pass over the same mix: integrated loudness, range, true peak and threshold. A mix of the
    music alone needs no pass: its loudness follows from what the pack stored."""
    stored = music_only_loudness(job)
    if stored is not None:
        job.loudness = stored
        return
    src = ffmpeg.input("source", ss=f"{job.start:.3f}", t=f"{job.duration:.3f}", **input_options())
    mixed = _audio_graph(job, src)
    if mixed is None:
        return
    # ebur128 measures what loudnorm's first pass measures (the same BS.1770 gating, true peak oversampled)
    # in a third of its time: loudnorm also runs its whole dynamic chain at 192 kHz just to print the figures.
    node = mixed.filter("ebur128", peak="true")
    argv = _with_global_args(ffmpeg.output(node, "-", format="null").compile(),
                             ["-nostdin", "-hide_banner", "-nostats"])
    result = run_tool(argv, timeout=job.limits.video_job_seconds, cwd=job.workdir, classify=classify,
                      limits=_rlimits(job))
    job.loudness = ebur128_summary(result.stderr)


_SUMMARY = re.compile(r"Summary:\s*Integrated loudness:\s*I:\s*(?P<i>\S+) LUFS\s*Threshold:\s*(?P<thresh>\S+) LUFS"
                      r"\s*Loudness range:\s*LRA:\s*(?P<lra>\S+) LU.*?True peak:\s*Peak:\s*(?P<tp>\S+) dBFS", re.S)


def ebur128_summary(stderr: str) -> dict[str, float]:
    """ebur128's closing summary as loudnorm's measured_* inputs; a silent mix reads I −70 and peak −inf."""
    match = _SUMMARY.search(stderr)
    if not match:
        raise CorruptMedia(detail="ebur128 printed no summary")
    return {"input_i": float(match["i"]), "input_thresh": float(match["thresh"]), "input_lra": float(match["lra"]),
            "input_tp": max(-99.0, float(match["tp"])), "target_offset": 0.0}


def plan_audio(job: VideoJob) -> None:
    mixed = _audio_graph(job, job.inputs[0])
    if mixed is None:
        job.audio = None
        return
    loud = job.loudness or {}
    measured_i = loud.get("input_i", float("-inf"))
    if measured_i > -60:  # near-silence is left alone: normalising it would only lift the noise floor
        mixed = mixed.filter("loudnorm", I=LOUDNESS_TARGET, TP=TRUE_PEAK_TARGET, LRA=LRA_TARGET,
                             measured_I=f"{measured_i:.2f}", measured_TP=f"{loud['input_tp']:.2f}",
                             measured_LRA=f"{loud['input_lra']:.2f}", measured_thresh=f"{loud['input_thresh']:.2f}",
                             offset=f"{loud.get('target_offset', 0.0):.2f}", linear="true")
    # loudnorm works at 192 kHz inside; phones want 48 kHz.
    job.audio = mixed.filter("aresample", 48000).filter("aformat", sample_fmts="fltp", channel_layouts="stereo")


def _rung(node: Any, width: int, height: int, size: tuple[int, int]) -> Any:
    if (width, height) != size:
        node = node.filter("scale", width, height, flags="bicubic")
    return node.filter("format", "yuv420p")


# swscale's default YUV→RGB24 path is ≈1 level off (low) and repeats chroma; these flags make it exact.
EXACT_RGB = "bicubic+accurate_rnd+full_chroma_int"


def _to_rgb(node: Any) -> Any:
    # Poster and preview: BT.709 limited-range YUV to RGB, the way players show the video.
    return node.filter("scale", in_color_matrix="bt709", in_range="tv", flags=EXACT_RGB).filter("format", "rgb24")


def _with_global_args(argv: list[str], global_args: list[str]) -> list[str]:
    # Before the first input, where ffmpeg reads global options (ffmpeg-python appends them at the end).
    return [argv[0], *global_args, *argv[1:]]


def video_encoder_options(job: VideoJob, rung: Rung) -> dict[str, Any]:
    """One rung's x264 and colour options (keyframes every GOP_SECONDS, forced on time): shared with the
    segmented path (pipeline/segments.py), whose pieces must concatenate into the same stream."""
    crf, maxrate = RATE_CONTROL.get(rung.short, (23, 5000 * rung.short // 1080))
    gop = max(1, round(job.fps * GOP_SECONDS))
    options: dict[str, Any] = {
        "c:v": "libx264", "preset": job.x264_preset, "profile:v": "high", "crf": crf,
        "maxrate": f"{maxrate}k", "bufsize": f"{maxrate * 2}k", "g": gop, "keyint_min": gop,
        "sc_threshold": 0, "force_key_frames": f"expr:gte(t,n_forced*{GOP_SECONDS})",
        "pix_fmt": "yuv420p", "colorspace": "bt709", "color_primaries": "bt709", "color_trc": "bt709",
        "color_range": "tv", "map_metadata": -1, "map_chapters": -1, "fflags": "+bitexact",
        "flags:v": "+bitexact", "fps_mode": "cfr",
    }
    params = job.x264_params.get(rung.short, X264_TUNING) if job.x264_params else ""
    if params:
        options["x264-params"] = params
    if job.threads:
        options["threads"] = job.threads
    return options


def cover_sample_step(job: VideoJob) -> int:
    """Every how many output frames the cover samples are taken (frame k of the samples is at k·step/fps)."""
    return max(1, round(job.fps / COVER_SAMPLE_FPS))


def cover_sample_size(top: tuple[int, int]) -> tuple[int, int]:
    rung = video_ladder(*top, rungs=(COVER_SHORT_SIDE,))[0]
    return rung.width, rung.height


def cover_samples_output(job: VideoJob, node: Any, first_frame: int = 0) -> Any:
    """Small RGB frames of the edited video (look and stickers on), scored after the pass: candidates are what
    the video really shows, and sampling costs a scale of one frame in fifteen. Every n-th frame (counted from
    the video's start: a segment starting at ``first_frame`` samples the same grid), not the fps filter,
    which keeps the last frame of each tick's window, ≈¼ s late."""
    sw, sh = cover_sample_size(job.top)
    step = cover_sample_step(job)
    frames = (node.filter("select", f"not(mod(n+{first_frame % step},{step}))" if first_frame % step
                          else f"not(mod(n,{step}))")
              .filter("scale", sw, sh, flags=EXACT_RGB, in_color_matrix="bt709", in_range="tv")
              .filter("format", "rgb24"))
    # passthrough: only the selected frames, never duplicates to fill the gaps between them.
    return ffmpeg.output(frames, COVER_FRAMES_FILE, format="rawvideo", fps_mode="passthrough", map_metadata=-1)


def plan_outputs(job: VideoJob) -> None:
    branches = 2 + len(job.rungs) + (1 if job.cover_candidates else 0)
    split = job.video.split()
    video_branches = [split[i] for i in range(branches)]
    audio_branches: list[Any] = []
    if job.audio is not None:
        asplit = job.audio.asplit()
        audio_branches = [asplit[i] for i in range(len(job.rungs))]
    outputs = []
    for i, rung in enumerate(job.rungs):
        v = _rung(video_branches[i], rung.width, rung.height, job.top)
        hls_dir = job.workdir / "hls" / rung.name
        hls_dir.mkdir(parents=True, exist_ok=True)
        mp4 = f"{rung.name}.mp4"
        tee = (f"[f=mp4:movflags=+faststart]{mp4}|"
               f"[f=hls:hls_time={GOP_SECONDS}:hls_playlist_type=vod:hls_segment_type=fmp4:"
               f"hls_flags=independent_segments:hls_fmp4_init_filename=init.mp4:"
               f"hls_segment_filename=hls/{rung.name}/seg_%03d.m4s]hls/{rung.name}/index.m3u8")
        options: dict[str, Any] = {"format": "tee", **video_encoder_options(job, rung)}
        streams = [v]
        if audio_branches:
            streams.append(audio_branches[i])
            options |= {"c:a": "aac", "b:a": AUDIO_BITRATE, "ar": 48000, "ac": 2, "flags:a": "+bitexact"}
        outputs.append(ffmpeg.output(*streams, tee, **options))
    # The poster: the edited frame at the cover time, losslessly; Pillow encodes it like a photo.
    cover = job.cover_time
    # Trimmed to that one frame first, so only it is converted (``-frames 1`` alone stops the muxer, not the
    # branch: every later frame would still be converted to RGB and dropped).
    stills = len(job.rungs)  # the poster's branch; the preview's is next
    poster = _to_rgb(video_branches[stills].filter("trim", start=f"{cover:.3f}").filter("setpts", "PTS-STARTPTS")
                     .filter("trim", end_frame=1))
    # threads=1: the PNG encoder is frame-threaded and would hold its one frame until the end of the pass;
    # written at once, the poster is usable while the rungs are still encoding (media_service/early.py).
    outputs.append(ffmpeg.output(poster, "poster.png", frames=1, update=1, threads=1, map_metadata=-1))
    # The feed preview: 3 s of animated WebP from the cover time on (or the last 3 s).
    p_start = max(0.0, min(cover, job.duration - PREVIEW_SECONDS))
    pw, ph = (video_ladder(*job.top, rungs=(PREVIEW_SHORT_SIDE,))[0].width,
              video_ladder(*job.top, rungs=(PREVIEW_SHORT_SIDE,))[0].height)
    preview = (video_branches[stills + 1].filter("trim", start=f"{p_start:.3f}", duration=PREVIEW_SECONDS)
               .filter("setpts", "PTS-STARTPTS").filter("fps", fps=PREVIEW_FPS)
               .filter("scale", pw, ph, flags=EXACT_RGB, in_color_matrix="bt709", in_range="tv")
               .filter("format", "rgb24"))
    outputs.append(ffmpeg.output(preview, "preview.webp", **{"c:v": "libwebp_anim", "loop": 0, "quality": 60,
                                                              "lossless": 0, "compression_level": 3,
                                                              "map_metadata": -1}))
    if job.cover_candidates:
        outputs.append(cover_samples_output(job, video_branches[2 + len(job.rungs)]))
    job.argv = _with_global_args(ffmpeg.merge_outputs(*outputs).compile(), pass_global_args(job))


def pass_global_args(job: VideoJob) -> list[str]:
    """Before the first input: quiet, overwrite, progress on stdout; one filter thread when asked for one."""
    single = ["-filter_complex_threads", "1"] if job.threads == 1 else []
    return ["-nostdin", "-hide_banner", "-nostats", "-y", "-progress", "pipe:1", *single]


PLAN_STEPS: list[Callable[[VideoJob], None]] = [plan_window, plan_source, plan_crop, plan_top_scale, plan_look,
                                                plan_stickers, analyse_loudness, plan_audio, plan_outputs]


def _rlimits(job: VideoJob) -> ResourceLimits:
    return ResourceLimits(cpu_seconds=job.limits.video_job_seconds * 4, memory_bytes=8 << 30, file_bytes=4 << 30)


def encode(job: VideoJob) -> None:
    total_us = job.duration * 1_000_000
    last = [0.0, 0.0]

    def on_line(line: str) -> None:
        if line.startswith("out_time_us=") and line[12:].lstrip("-").isdigit():
            fraction = min(1.0, max(0.0, int(line[12:]) / total_us))
            now = time.monotonic()
            if fraction - last[0] >= 0.02 and now - last[1] >= 0.5:
                last[0], last[1] = fraction, now
                job.progress(fraction)

    run_tool(job.argv, timeout=job.limits.video_job_seconds, cwd=job.workdir, on_line=on_line, classify=classify,
             limits=_rlimits(job), should_stop=job.should_stop)


def _probe_output(path: Path) -> dict[str, Any]:
    from media_service.probe import ffprobe_json

    data = ffprobe_json(path, demuxers="mov,mp4,m4a,3gp,3g2,mj2")
    fmt = data.get("format", {})
    return {"duration": round(float(fmt.get("duration", 0.0)), 3), "bitrate": int(fmt.get("bit_rate", 0) or 0)}


def collect(job: VideoJob) -> None:
    """Turn ffmpeg's files into renditions: MP4s, the HLS tree with its master playlist, poster, preview."""
    variants = []
    for rung in job.rungs:
        path = job.workdir / f"{rung.name}.mp4"
        if not path.exists():
            raise MediaError(detail=f"ffmpeg wrote no {path.name}")
        info = _probe_output(path)
        job.renditions.append(Rendition(f"{rung.name}.mp4", path, "video/mp4", rung.width, rung.height,
                                        path.stat().st_size))
        job.outputs_info[f"{rung.name}.mp4"] = info
        playlist = job.workdir / "hls" / rung.name / "index.m3u8"
        peak, average = segment_stats(playlist)
        codec = avc_codec_from_mp4(job.workdir / "hls" / rung.name / "init.mp4")
        variants.append((Variant(f"{rung.name}/index.m3u8", rung.width, rung.height, job.fps, codec,
                                 "mp4a.40.2" if job.audio is not None else None), peak, average))
    master = job.workdir / "hls" / "master.m3u8"
    master.write_text(master_playlist(variants))
    job.hls = {"dir": job.workdir / "hls", "master": "master.m3u8",
               "variants": [{"name": v.playlist, "width": v.width, "height": v.height, "bandwidth": peak}
                            for v, peak, _ in variants]}
    poster_png = job.workdir / "poster.png"
    if not poster_png.exists():
        raise MediaError(detail="ffmpeg wrote no poster")
    with Image.open(poster_png) as img:
        frame = img.convert("RGB")
    frame.info = {}
    for encoded, name in ((encode_webp(frame, job.workdir / "poster.webp"), "poster.webp"),
                          (encode_jpeg(frame, job.workdir / "poster.jpg"), "poster.jpg")):
        job.renditions.append(Rendition(name, encoded.path, encoded.content_type, encoded.width, encoded.height,
                                        encoded.bytes))
    preview = job.workdir / "preview.webp"
    with Image.open(preview) as img:
        pw, ph = img.size
    job.renditions.append(Rendition("preview.webp", preview, "image/webp", pw, ph, preview.stat().st_size))
    for name in ("poster.webp", "poster.jpg"):
        job.outputs_info[name] = {"time": round(job.cover_time, 3)}
    small = frame.copy()
    small.thumbnail((256, 256))
    job.placeholder = {"blurhash": blurhash(small), "dominant_color": dominant_color(small)}
    if job.cover_candidates:
        collect_cover_candidates(job)


def collect_cover_candidates(job: VideoJob) -> None:
    """The best frames of the sampled edited video as small WebP stills (``cover-<n>.webp``), each with its
    time and scores; the client picks one (PUT /v1/media/{id}/cover) and the poster is rendered there."""
    path = job.workdir / COVER_FRAMES_FILE
    if not path.exists():
        return
    w, h = cover_sample_size(job.top)
    count = path.stat().st_size // (w * h * 3)
    if count == 0:
        return
    frames = np.memmap(path, dtype=np.uint8, mode="r", shape=(count, h, w, 3))
    scored = score_frames([frames[i] for i in range(count)], job.fps / cover_sample_step(job))
    last = max(0.0, job.duration - 1.0 / job.fps)
    for n, pick in enumerate(best_candidates(scored, COVER_CANDIDATES, COVER_MIN_GAP_SECONDS)):
        name = f"cover-{n}.webp"
        still = Image.fromarray(np.array(frames[pick.index]), "RGB")
        encoded = encode_webp(still, job.workdir / name)
        job.renditions.append(Rendition(name, encoded.path, encoded.content_type, encoded.width, encoded.height,
                                        encoded.bytes))
        job.outputs_info[name] = {"role": "cover_candidate", "time": round(min(pick.time, last), 3),
                                  "score": pick.total, "scores": {k: round(v, 3) for k, v in pick.scores.items()}}
    del frames
    path.unlink()


def run_video_pipeline(job: VideoJob) -> VideoJob:
    started = time.perf_counter()
    for step in PLAN_STEPS:
        t = time.perf_counter()
        step(job)
        job.timings[step.__name__] = time.perf_counter() - t
    t = time.perf_counter()
    encode(job)
    job.timings["encode"] = time.perf_counter() - t
    t = time.perf_counter()
    collect(job)
    job.timings["collect"] = time.perf_counter() - t
    job.timings["total"] = time.perf_counter() - started
    return job


def prepare_workdir(source: Path, workdir: Path) -> None:
    """ffmpeg runs in the job's private directory and opens only names inside it."""
    target = workdir / "source"
    if source.resolve() != target.resolve():
        shutil.copyfile(source, target)
