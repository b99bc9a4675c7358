"""A video rendered in a few pieces at once on this worker, when it has the cores for it.

Why: Debian's ffmpeg (5.1) drives its filter graph, the muxers and every encoder's per-frame setup on one
thread (x264 copies each frame and builds its half-size lookahead planes in the caller's thread, for each of
the three rungs). On a 60 s 1080×1920 clip that thread sits at 100% while the process keeps only ≈1.75 of two
cores busy. The segmented path's parts (pipeline/segments.py: segments of the output on the keyframe grid, the
audio, the stills) run here as separate ffmpeg processes at the same time, and are joined by stream copy as
the multi-worker split joins them. Every frame is still decoded once (plus ≈0.5 s of preroll per piece) and
every rung encoded once; HLS still comes from those encodes.

The parts run on as many slots as there are pieces, each ffmpeg on one thread (threads only add overhead and
memory when every core already has its process): the first pieces start with the stills, the audio follows
the stills on their slot, and the last piece starts when both are done, so the small parts' memory is never
held beside every piece's at once. The last piece is shorter by about what the small parts take.

What one pass has and pieces do not: the lowest rung's growing playlist while the video renders
(media_service/early.py sees its segments only at the join). The poster still comes early: the stills part
is small and its ``poster.png`` is put in the work folder as soon as it is written.
"""

from __future__ import annotations

import os
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from media_service.errors import Cancelled
from media_service.limits import DEFAULT_LIMITS, Limits
from media_service.packs import PackRegistry
from media_service.pipeline.segments import PartResult, SegmentPlan, join_segments, plan_segments, render_named_part
from media_service.pipeline.video import GOP_SECONDS, VideoJob, run_video_pipeline
from media_service.probe import VideoFacts
from media_service.recipe import Recipe, output_window

# Shorter results are rendered in one pass: a piece has fixed costs (its own process, preroll, the join), and
# a short clip keeps the growing lowest-rung playlist.
DEFAULT_MIN_SECONDS = 20.0
# How much of the output the stills and the audio parts are worth, on one core, in seconds of a piece's work:
# the last piece, which waits for them, is this much shorter than the others (whole GOPs).
HEAD_START_SECONDS = 4.0


def cores_available() -> int:
    """The CPUs this process may run on (its affinity mask: a container's cpuset, a taskset)."""
    try:
        return len(os.sched_getaffinity(0))
    except AttributeError:  # not Linux
        return os.cpu_count() or 1


def pieces_for(duration: float, pieces: int, min_seconds: float = DEFAULT_MIN_SECONDS) -> int:
    """How many pieces a result of ``duration`` s is rendered in: 1 (one pass) below ``min_seconds``, else
    ``pieces``, but never a piece shorter than two GOPs."""
    if pieces <= 1 or duration < min_seconds:
        return 1
    return max(1, min(pieces, int(duration // (2 * GOP_SECONDS))))


class _Progress:
    """The segments' fractions, weighted by their frames, as one fraction (parts report from their threads)."""

    def __init__(self, plan: SegmentPlan, report: Callable[[float], None]) -> None:
        self._frames = {p.name: p.frames for p in plan.pieces}
        self._done = dict.fromkeys(self._frames, 0.0)
        self._report = report
        self._lock = threading.Lock()

    def of(self, part: str) -> Callable[[float], None]:
        """The progress callback for ``part`` (the audio and the stills have none)."""
        if part not in self._frames:
            return lambda _f: None

        def progress(fraction: float) -> None:
            with self._lock:
                self._done[part] = max(self._done[part], fraction)
                total = sum(self._done[p] * n for p, n in self._frames.items()) / sum(self._frames.values())
                self._report(total)

        return progress


def render_in_pieces(source: Path, facts: VideoFacts, recipe: Recipe, registry: PackRegistry, workdir: Path,
                     pieces: int, *, limits: Limits = DEFAULT_LIMITS,
                     progress: Callable[[float], None] = lambda _f: None,
                     should_stop: Callable[[], bool] = lambda: False) -> VideoJob:
    """Every part of the plan at once, each in its own folder under ``workdir`` (``source`` linked in), its
    files moved up under the names the join expects; then the join and ``collect``, as the split does. A part
    that fails stops the others (their ffmpeg is killed) and its error is raised."""
    started = time.perf_counter()
    _, duration = output_window(recipe, facts.duration, limits.max_video_seconds)
    length = (duration + HEAD_START_SECONDS) / pieces
    plan = plan_segments(facts, recipe, length, limits, lengths=[length] * pieces)
    failed = threading.Event()
    tracker = _Progress(plan, progress)
    timings: dict[str, float] = {}

    def stop() -> bool:
        return failed.is_set() or should_stop()

    def run(part: str) -> PartResult:
        if stop():
            raise Cancelled()  # another part failed before this one's turn
        t = time.perf_counter()
        folder = workdir / f"part-{part}"
        folder.mkdir()
        (folder / "source").symlink_to(source.resolve())
        report = tracker.of(part)
        try:
            result = render_named_part(part, folder / "source", facts, recipe, registry, folder, plan, limits=limits,
                                       progress=report, should_stop=stop, threads=1)
        except BaseException:
            failed.set()
            raise
        for name, path in result.files.items():
            os.replace(path, workdir / plan.local_name(part, name))  # the poster lands here early
        report(1.0)  # ffmpeg's last progress line comes a little before its end
        timings[part] = time.perf_counter() - t
        return result

    segments = [p.name for p in plan.pieces]
    order = [*segments[:-1], "stills", *(["audio"] if plan.has_audio else []), segments[-1]]
    with ThreadPoolExecutor(max_workers=len(segments), thread_name_prefix="piece") as pool:
        futures = [pool.submit(run, part) for part in order]
        errors = [f.exception() for f in futures]
    # The part that failed first, not the others it cancelled.
    raised = [e for e in errors if e is not None]
    if raised:
        raise next((e for e in raised if not isinstance(e, Cancelled)), raised[0])
    parts_done = time.perf_counter()
    job = join_segments(workdir, facts, recipe, registry, plan, limits=limits, should_stop=should_stop)
    job.timings = {"parts": parts_done - started, **{f"part_{k}": v for k, v in timings.items()},
                   **{k: v for k, v in job.timings.items() if k != "total"},
                   "total": time.perf_counter() - started}
    return job


def render_video(source: Path, facts: VideoFacts, recipe: Recipe, registry: PackRegistry, workdir: Path, *,
                 pieces: int = 1, min_seconds: float = DEFAULT_MIN_SECONDS, limits: Limits = DEFAULT_LIMITS,
                 progress: Callable[[float], None] = lambda _f: None,
                 should_stop: Callable[[], bool] = lambda: False) -> VideoJob:
    """The worker's video render: one pass, or ``pieces`` at once for a long enough result."""
    _, duration = output_window(recipe, facts.duration, limits.max_video_seconds)
    n = pieces_for(duration, pieces, min_seconds)
    if n > 1:
        return render_in_pieces(source, facts, recipe, registry, workdir, n, limits=limits, progress=progress,
                                should_stop=should_stop)
    job = VideoJob(source=source, facts=facts, recipe=recipe, registry=registry, workdir=workdir, limits=limits,
                   progress=progress, should_stop=should_stop)
    return run_video_pipeline(job)
