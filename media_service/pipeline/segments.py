"""A long video in pieces: segments of the output timeline rendered apart (on any worker), then joined.

Each piece runs the same plan steps as the one-pass pipeline (pipeline/video.py): the same source decode,
frame-rate conversion, crop, scale, look and stickers, and each rung encoded with the same x264 options
(``video_encoder_options``). What differs is only where the piece starts and how long it is:

* A **video segment** is ``frames`` output frames from output frame ``first``. Boundaries sit on the
  single-pass keyframe grid (multiples of GOP_SECONDS), so every segment starts with an IDR frame and the
  forced keyframes inside it fall where the one-pass render puts them, in every rung. The source is opened a
  little before the boundary (``PREROLL_SECONDS``) and the extra frames are dropped right after the ``fps``
  filter: the constant-rate grid then picks the same source frames as one pass would (a variable-rate phone
  clip could otherwise start a piece one frame late). Sticker windows move by the segment's start.
  Video only, one MP4 per rung.
* The **audio** is mixed and normalised once for the whole duration (loudnorm measures the whole mix), by
  the same graph as one pass, into an AAC ``audio.m4a``.
* The **stills** (poster and preview) are a small render of the few seconds they show, with the same
  look and stickers, by plan_outputs itself (with no rungs).
* The **join** concatenates each rung's segments without re-encoding (the concat demuxer, ``-c copy``),
  adds the audio, and writes each rung's MP4 (``faststart``) and fMP4 HLS variant with the tee muxer, as one
  pass does; ``collect`` then makes the master playlist, poster, preview and placeholder exactly as it does
  for one pass.
"""

from __future__ import annotations

import itertools
import math
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import ffmpeg

from media_service.ffmpeg.classify import classify
from media_service.ffmpeg.runner import run_tool
from media_service.ffmpeg.safety import input_options
from media_service.limits import DEFAULT_LIMITS, Limits
from media_service.packs import PackRegistry
from media_service.pipeline.video import (
    AUDIO_BITRATE,
    COVER_FRAMES_FILE,
    GOP_SECONDS,
    PREVIEW_SECONDS,
    VideoJob,
    _rlimits,
    _rung,
    _with_global_args,
    analyse_loudness,
    collect,
    cover_samples_output,
    encode,
    output_fps,
    pass_global_args,
    plan_audio,
    plan_crop,
    plan_look,
    plan_outputs,
    plan_source,
    plan_stickers,
    plan_top_scale,
    plan_window,
    video_encoder_options,
    video_ladder,
)
from media_service.probe import VideoFacts
from media_service.recipe import Recipe, output_window

PREROLL_SECONDS = 0.5
AUDIO_FILE = "audio.m4a"
# The concat demuxer reads the segment files; each is an MP4 we wrote ourselves.
JOIN_DEMUXERS = "concat,mov,mp4,m4a,3gp,3g2,mj2"
SEGMENT_DEMUXERS = "mov,mp4,m4a,3gp,3g2,mj2"


@dataclass(frozen=True)
class Piece:
    index: int
    first: int  # the first output frame it holds
    frames: int

    @property
    def name(self) -> str:
        return f"s{self.index:03d}"


@dataclass(frozen=True)
class SegmentPlan:
    """Where the output is cut. Plain values, so that it travels in a task message as JSON."""

    fps: float
    duration: float  # of the output, in seconds
    frames: int  # of the output
    pieces: tuple[Piece, ...]
    has_audio: bool
    rungs: tuple[str, ...]

    @property
    def parts(self) -> list[str]:
        """Every part the join waits for: the segments (longest work first), then the audio and stills."""
        return [p.name for p in self.pieces] + (["audio"] if self.has_audio else []) + ["stills"]

    def piece(self, name: str) -> Piece:
        return next(p for p in self.pieces if p.name == name)

    def local_name(self, part: str, name: str) -> str:
        """What a part's file is called in the join's folder: segments by piece and rung, the rest as is."""
        return f"{part}_{name}" if any(p.name == part for p in self.pieces) else name

    def to_dict(self) -> dict[str, Any]:
        return {"fps": self.fps, "duration": self.duration, "frames": self.frames, "has_audio": self.has_audio,
                "rungs": list(self.rungs), "pieces": [[p.index, p.first, p.frames] for p in self.pieces]}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SegmentPlan:
        return cls(float(data["fps"]), float(data["duration"]), int(data["frames"]),
                   tuple(Piece(int(i), int(f), int(n)) for i, f, n in data["pieces"]), bool(data["has_audio"]),
                   tuple(data["rungs"]))


def output_frames(duration: float, fps: float) -> int:
    """How many frames one pass writes for ``duration`` s at ``fps`` (the fps filter's grid k/fps < duration;
    ffmpeg is given the duration to the millisecond)."""
    return max(1, math.ceil(round(duration, 3) * fps - 1e-6))


def plan_segments(facts: VideoFacts, recipe: Recipe, segment_seconds: float, limits: Limits = DEFAULT_LIMITS,
                  has_audio: bool | None = None, lengths: list[float] | None = None) -> SegmentPlan:
    """Cut the output into segments of about ``segment_seconds`` (or of about ``lengths``, in order), rounded
    to whole GOPs; the last one takes the rest, and a remainder shorter than one GOP joins the segment before
    it."""
    _, duration = output_window(recipe, facts.duration, limits.max_video_seconds)
    fps = output_fps(facts)
    total = output_frames(duration, fps)
    gops = max(1, round(segment_seconds / GOP_SECONDS))
    steps = (itertools.repeat(gops) if lengths is None
             else iter([max(1, round(length / GOP_SECONDS)) for length in lengths[:-1]]))
    bounds = [0]
    k = 0
    for step in steps:
        k += step
        b = math.ceil(k * GOP_SECONDS * fps - 1e-6)  # a keyframe of the one-pass grid (t >= 2n)
        if b + math.ceil(GOP_SECONDS * fps) > total:
            break
        bounds.append(b)
    bounds.append(total)
    pieces = tuple(Piece(i, bounds[i], bounds[i + 1] - bounds[i]) for i in range(len(bounds) - 1))
    crop_w, crop_h = _crop_size(facts, recipe)
    rungs = tuple(r.name for r in video_ladder(crop_w, crop_h))
    # As _audio_graph mixes it: the original (unless muted under music), the music, or nothing at all.
    music = recipe.music
    audible = ((facts.has_audio and (music is None or music.original_volume > 0)) or music is not None
               if has_audio is None else has_audio)
    return SegmentPlan(fps, duration, total, pieces, audible, rungs)


def _crop_size(facts: VideoFacts, recipe: Recipe) -> tuple[int, int]:
    from media_service import geometry

    box = geometry.aspect_crop(facts.width, facts.height, recipe.aspect.ratio())
    return box.width, box.height


def shifted_recipe(recipe: Recipe, offset: float, length: float, full_duration: float) -> Recipe:
    """The recipe as a piece that starts ``offset`` s into the output sees it: sticker windows moved back by
    ``offset`` (a window that began earlier starts before 0, so an animation keeps its phase), stickers that
    do not show in [0, length) left out. The cover moves too (the stills part)."""
    stickers = []
    for s in recipe.stickers:
        if s.start is None and s.end is None:
            stickers.append(s)
            continue
        start = (s.start or 0.0) - offset
        end = (s.end if s.end is not None else full_duration + 1) - offset
        if end <= 0 or start >= length:
            continue
        # model_copy does not validate: a negative start is deliberate here.
        stickers.append(s.model_copy(update={"start": start, "end": end}))
    update: dict[str, Any] = {"stickers": stickers}
    if recipe.cover is not None:
        update["cover"] = recipe.cover.model_copy(update={"time": max(0.0, recipe.cover.time - offset)})
    return recipe.model_copy(update=update)


@dataclass
class PartResult:
    files: dict[str, Path]  # name to upload → local path
    timings: dict[str, float] = field(default_factory=dict)
    info: dict[str, Any] = field(default_factory=dict)


def _window_job(source: Path, facts: VideoFacts, recipe: Recipe, registry: PackRegistry, workdir: Path,
                limits: Limits, first: int, frames: int, plan_fps: float, full_duration: float,
                progress: Callable[[float], None], should_stop: Callable[[], bool], **job_options: Any
                ) -> tuple[VideoJob, int]:
    """A VideoJob planned up to its stickers for output frames [first, first + frames): the source opened
    ``preroll`` frames early, those frames dropped right after the fps filter. Returns (job, preroll)."""
    full = VideoJob(source=source, facts=facts, recipe=recipe, registry=registry, workdir=workdir, limits=limits)
    plan_window(full)
    fps = plan_fps
    preroll = 0 if first == 0 else min(first + round(full.start * fps), round(PREROLL_SECONDS * fps))
    offset = first / fps
    length = frames / fps
    job = VideoJob(source=source, facts=facts, recipe=shifted_recipe(recipe, offset, length, full_duration),
                   registry=registry, workdir=workdir, limits=limits, progress=progress, should_stop=should_stop,
                   **job_options)
    job.fps = fps
    job.start = full.start + (first - preroll) / fps
    # A frame more than needed: the trim below cuts exactly, so the fps filter never runs short at the end.
    job.duration = (preroll + frames + 1) / fps
    plan_source(job)
    # The fps filter's time base is 1/fps: its timestamps count output frames from the opened position.
    job.video = (job.video.filter("trim", start_pts=preroll, end_pts=preroll + frames)
                 .filter("setpts", "PTS-STARTPTS"))
    job.duration = length
    for step in (plan_crop, plan_top_scale, plan_look, plan_stickers):
        step(job)
    return job, preroll


def render_segment(source: Path, facts: VideoFacts, recipe: Recipe, registry: PackRegistry, workdir: Path,
                   plan: SegmentPlan, piece: Piece, *, limits: Limits = DEFAULT_LIMITS,
                   progress: Callable[[float], None] = lambda _f: None,
                   should_stop: Callable[[], bool] = lambda: False, **job_options: Any) -> PartResult:
    """One segment, video only: ``<rung>.mp4`` per rung in ``workdir``."""
    started = time.perf_counter()
    job, _ = _window_job(source, facts, recipe, registry, workdir, limits, piece.first, piece.frames, plan.fps,
                         plan.duration, progress, should_stop, **job_options)
    if tuple(r.name for r in job.rungs) != plan.rungs:
        raise ValueError(f"the source no longer matches the plan: {job.rungs} against {plan.rungs}")
    split = job.video.split()
    outputs = []
    for i, rung in enumerate(job.rungs):
        v = _rung(split[i], rung.width, rung.height, job.top)
        outputs.append(ffmpeg.output(v, f"{rung.name}.mp4", format="mp4", **video_encoder_options(job, rung)))
    # This segment's cover samples, on the whole video's grid: the join concatenates them in order.
    outputs.append(cover_samples_output(job, split[len(job.rungs)], piece.first))
    job.argv = _with_global_args(ffmpeg.merge_outputs(*outputs).compile(), pass_global_args(job))
    planned = time.perf_counter()
    encode(job)
    done = time.perf_counter()
    files = {f"{r.name}.mp4": workdir / f"{r.name}.mp4" for r in job.rungs}
    if (workdir / COVER_FRAMES_FILE).exists():
        files[COVER_FRAMES_FILE] = workdir / COVER_FRAMES_FILE
    for name, path in files.items():
        if not path.exists():
            raise ValueError(f"ffmpeg wrote no {name}")
    return PartResult(files, {"plan": planned - started, "encode": done - planned},
                      {"first": piece.first, "frames": piece.frames})


def render_audio(source: Path, facts: VideoFacts, recipe: Recipe, registry: PackRegistry, workdir: Path, *,
                 limits: Limits = DEFAULT_LIMITS, should_stop: Callable[[], bool] = lambda: False) -> PartResult:
    """The whole mix, measured and normalised as one pass does, encoded once: ``audio.m4a`` (none for a
    silent video without music)."""
    started = time.perf_counter()
    job = VideoJob(source=source, facts=facts, recipe=recipe, registry=registry, workdir=workdir, limits=limits,
                   should_stop=should_stop)
    for step in (plan_window, plan_source, analyse_loudness, plan_audio):
        t = time.perf_counter()
        step(job)
        job.timings[step.__name__] = time.perf_counter() - t
    if job.audio is None:
        return PartResult({}, job.timings)
    out = ffmpeg.output(job.audio, AUDIO_FILE, format="mp4", **{
        "c:a": "aac", "b:a": AUDIO_BITRATE, "ar": 48000, "ac": 2, "flags:a": "+bitexact", "fflags": "+bitexact",
        "map_metadata": -1, "map_chapters": -1})
    argv = _with_global_args(out.compile(), ["-nostdin", "-hide_banner", "-nostats", "-y"])
    t = time.perf_counter()
    run_tool(argv, timeout=limits.video_job_seconds, cwd=workdir, classify=classify, limits=_rlimits(job),
             should_stop=should_stop)
    job.timings["encode"] = time.perf_counter() - t
    job.timings["total"] = time.perf_counter() - started
    return PartResult({AUDIO_FILE: workdir / AUDIO_FILE}, job.timings)


def render_stills(source: Path, facts: VideoFacts, recipe: Recipe, registry: PackRegistry, workdir: Path,
                  plan: SegmentPlan, *, limits: Limits = DEFAULT_LIMITS,
                  should_stop: Callable[[], bool] = lambda: False, **job_options: Any) -> PartResult:
    """Poster (``poster.png``, lossless) and preview (``preview.webp``) from a render of only the seconds
    they show: from the frame at or before the preview's start to its end."""
    started = time.perf_counter()
    probe_job = VideoJob(source=source, facts=facts, recipe=recipe, registry=registry, workdir=workdir,
                         limits=limits)
    plan_window(probe_job)
    probe_job.fps = plan.fps
    probe_job.duration = plan.duration
    cover = probe_job.cover_time
    p_start = max(0.0, min(cover, plan.duration - PREVIEW_SECONDS))
    first = math.floor(p_start * plan.fps + 1e-6)
    frames = min(plan.frames - first, output_frames(p_start - first / plan.fps + PREVIEW_SECONDS, plan.fps))
    job, _ = _window_job(source, facts, recipe, registry, workdir, limits, first, frames, plan.fps,
                         plan.duration, lambda _f: None, should_stop, **job_options)
    # The window's own time: the cover and the preview's start are where one pass puts them, less `first`.
    job.duration = frames / plan.fps
    job.rungs = []
    job.cover_candidates = False  # a window of a few seconds; the join has no sampled frames either
    plan_outputs(job)
    t = time.perf_counter()
    encode(job)
    timings = {"plan": t - started, "encode": time.perf_counter() - t}
    files = {"poster.png": workdir / "poster.png", "preview.webp": workdir / "preview.webp"}
    for name, path in files.items():
        if not path.exists():
            raise ValueError(f"ffmpeg wrote no {name}")
    return PartResult(files, timings, {"first": first, "frames": frames})


def render_named_part(part: str, source: Path, facts: VideoFacts, recipe: Recipe, registry: PackRegistry,
                      workdir: Path, plan: SegmentPlan, *, limits: Limits = DEFAULT_LIMITS,
                      progress: Callable[[float], None] = lambda _f: None,
                      should_stop: Callable[[], bool] = lambda: False, **job_options: Any) -> PartResult:
    """One part of ``plan.parts`` by its name: the audio, the stills, or a video segment (``job_options``:
    VideoJob fields for the video parts, such as ``threads``)."""
    if part == "audio":
        return render_audio(source, facts, recipe, registry, workdir, limits=limits, should_stop=should_stop)
    if part == "stills":
        return render_stills(source, facts, recipe, registry, workdir, plan, limits=limits, should_stop=should_stop,
                             **job_options)
    return render_segment(source, facts, recipe, registry, workdir, plan, plan.piece(part), limits=limits,
                          progress=progress, should_stop=should_stop, **job_options)


def join_segments(workdir: Path, facts: VideoFacts, recipe: Recipe, registry: PackRegistry, plan: SegmentPlan,
                  *, limits: Limits = DEFAULT_LIMITS, should_stop: Callable[[], bool] = lambda: False
                  ) -> VideoJob:
    """``workdir`` holds ``<piece>_<rung>.mp4`` for every piece and rung, ``audio.m4a`` when the plan has
    audio, ``poster.png`` and ``preview.webp``. Writes what one pass writes (``<rung>.mp4``, ``hls/``) by
    stream copy and returns the job with its renditions collected."""
    started = time.perf_counter()
    job = VideoJob(source=workdir / "source", facts=facts, recipe=recipe, registry=registry, workdir=workdir,
                   limits=limits, should_stop=should_stop)
    job.fps, job.duration = plan.fps, plan.duration
    crop_w, crop_h = _crop_size(facts, recipe)
    job.rungs = [r for r in video_ladder(crop_w, crop_h) if r.name in plan.rungs]
    job.top = (job.rungs[0].width, job.rungs[0].height)
    # The segments' cover samples, in order, are the one pass's (collect scores them).
    with (workdir / COVER_FRAMES_FILE).open("wb") as samples:
        for piece in plan.pieces:
            part = workdir / plan.local_name(piece.name, COVER_FRAMES_FILE)
            if part.exists():
                samples.write(part.read_bytes())
    audio_in = None
    if plan.has_audio:
        audio_in = ffmpeg.input(AUDIO_FILE, **input_options(SEGMENT_DEMUXERS))
        job.audio = audio_in.audio  # collect() tells the HLS CODECS from it
    outputs = []
    for rung in job.rungs:
        listing = workdir / f"concat_{rung.name}.txt"
        lines = ["ffconcat version 1.0"]
        for piece in plan.pieces:
            lines += [f"file {piece.name}_{rung.name}.mp4", f"duration {piece.frames / plan.fps:.6f}"]
        listing.write_text("\n".join(lines) + "\n")
        video_in = ffmpeg.input(listing.name, f="concat", safe=1, **input_options(JOIN_DEMUXERS))
        (workdir / "hls" / rung.name).mkdir(parents=True, exist_ok=True)
        tee = (f"[f=mp4:movflags=+faststart]{rung.name}.mp4|"
               f"[f=hls:hls_time={GOP_SECONDS}:hls_playlist_type=vod:hls_segment_type=fmp4:"
               f"hls_flags=independent_segments:hls_fmp4_init_filename=init.mp4:"
               f"hls_segment_filename=hls/{rung.name}/seg_%03d.m4s]hls/{rung.name}/index.m3u8")
        streams = [video_in.video] + ([audio_in.audio] if audio_in is not None else [])
        outputs.append(ffmpeg.output(*streams, tee, format="tee", c="copy", map_metadata=-1, map_chapters=-1,
                                     fflags="+bitexact"))
    argv = _with_global_args(ffmpeg.merge_outputs(*outputs).compile(), ["-nostdin", "-hide_banner", "-nostats",
                                                                         "-y"])
    t = time.perf_counter()
    run_tool(argv, timeout=limits.video_job_seconds, cwd=workdir, classify=classify, limits=_rlimits(job),
             should_stop=should_stop)
    job.timings["concat"] = time.perf_counter() - t
    t = time.perf_counter()
    collect(job)
    job.timings["collect"] = time.perf_counter() - t
    job.timings["total"] = time.perf_counter() - started
    return job
