"""Processing one media record: claim, fetch, run the pipeline, store under a fresh version, publish.

Called by the Celery task (workers/tasks.py) with everything it needs as values.
"""

from __future__ import annotations

import logging
import os
import re
import secrets
import shutil
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from media_service import logs, metrics
from media_service.db import MediaRepo
from media_service.early import EarlyPublisher
from media_service.errors import AttemptsExhausted, Cancelled, InternalError, MediaError, ToolTimeout
from media_service.limits import Limits
from media_service.multiproc import pid_alive
from media_service.packs import PackRegistry
from media_service.periodic import Periodic
from media_service.pipeline.image import ImageJob, Rendition, run_image_pipeline
from media_service.pipeline.pieces import DEFAULT_MIN_SECONDS, render_video
from media_service.pipeline.video import GOP_SECONDS
from media_service.probe import check_video_caps, probe_video
from media_service.recipe import Recipe, recipe_from_dict
from media_service.storage import Storage, StoredObject

log = logging.getLogger("media_service.jobs")


def original_key(media_id: str) -> str:
    return f"media/{media_id}/original"


def media_prefix(media_id: str) -> str:
    return f"media/{media_id}/"


@dataclass
class JobContext:
    repo: MediaRepo
    storage: Storage
    registry: PackRegistry | Callable[[], PackRegistry]  # a fixed registry, or one that follows publishing
    limits: Limits
    max_attempts: int
    tmp_root: Path | None = None
    # The task runner's own time-limit exception (Celery's SoftTimeLimitExceeded), given as a value so that
    # this module does not import Celery.
    timeout_errors: tuple[type[BaseException], ...] = ()
    # Long videos in parallel (media_service/segmented.py): a video whose result lasts at least
    # segment_min_seconds (0: never) is cut into segments of about segment_seconds, handed to
    # ``dispatch_split`` (the worker sends them as a Celery chord); None where there is no result backend.
    segment_seconds: float = 10.0
    segment_min_seconds: float = 0.0
    # A processing record whose attempt has shown no sign of life for this long is taken over by a new
    # message for it; a live one is not (the message is retried later). Live attempts beat 4× per lease.
    lease_seconds: float = 0.0
    dispatch_split: Callable[[Any], None] | None = None
    # A video whose result lasts at least video_pieces_min_seconds is rendered in this many pieces at once on
    # this worker (pipeline/pieces.py; 1: always one pass).
    video_pieces: int = 1
    video_pieces_min_seconds: float = DEFAULT_MIN_SECONDS


@dataclass(frozen=True)
class Outcome:
    status: str  # "ready", "failed", "skipped", "retry", "busy" (another attempt is alive: try again later)
    error: MediaError | None = None


def process_media(ctx: JobContext, media_id: str) -> Outcome:
    """Every log line inside carries the media id (and, once claimed, the attempt and kind); the outcome is
    counted in media_jobs_total and friends (media_service/metrics.py)."""
    seen: dict[str, Any] = {}
    started = time.monotonic()
    with logs.job_context(media_id):
        try:
            outcome = _process_media(ctx, media_id, seen)
        except BaseException as exc:
            # Out of our hands (worker shutdown, a hard limit): the broker redelivers; count it as a retry.
            if "attempt" in seen:
                metrics.job_finished(seen["kind"], "retry", time.monotonic() - started, type(exc).__name__)
            raise
        kind = seen.get("kind") or "unknown"
        metrics.job_finished(kind, outcome.status, time.monotonic() - started if "attempt" in seen else None,
                             outcome.error.code if outcome.error is not None else None)
        return outcome


def _process_media(ctx: JobContext, media_id: str, seen: dict[str, Any]) -> Outcome:
    claim = ctx.repo.claim(media_id, ctx.max_attempts, ctx.lease_seconds)
    if claim.reason == "busy":
        log.info("media %s: attempt %d is alive elsewhere; this message waits", media_id, claim.attempt)
        return Outcome("busy")
    if claim.record is not None:
        seen["kind"] = claim.record.kind
        logs.bind(kind=claim.record.kind, attempt=claim.attempt)
    if claim.reason in ("gone", "done"):
        log.info("media %s: nothing to do (%s)", media_id, claim.reason)
        return Outcome("skipped")
    if claim.reason == "exhausted":
        err = AttemptsExhausted()
        ctx.repo.fail(media_id, err.code, err.message)
        return Outcome("failed", err)
    record = claim.record
    assert record is not None
    attempt = claim.attempt
    seen["attempt"] = attempt
    sweep_stale_workdirs(ctx.tmp_root)
    workdir = Path(tempfile.mkdtemp(prefix=f"media-{media_id}-p{os.getpid()}-", dir=ctx.tmp_root))
    version = f"v{attempt}-{secrets.token_hex(4)}"
    stored_prefix = f"{media_prefix(media_id)}{version}/"
    started = time.monotonic()
    in_progress = metrics.JOBS_IN_PROGRESS.labels(kind=record.kind)
    in_progress.inc()
    heartbeat: Periodic | None = None
    try:
        source = workdir / "source"
        ctx.storage.get_to_file(record.original_key, source)
        metrics.stage_seconds(record.kind, {"fetch": time.monotonic() - started})
        last = [0.0]

        cancelled = [False]
        if ctx.lease_seconds > 0:
            def beat() -> None:
                if not ctx.repo.touch(media_id, attempt):
                    cancelled[0] = True

            heartbeat = Periodic(f"heartbeat of {media_id}", ctx.lease_seconds / 4, beat)
            heartbeat.start()

        def progress(fraction: float) -> None:
            # Only milestones are written (every 5%); each write is a small UPDATE, and tells whether this
            # attempt still owns the record (a DELETE meanwhile cancels the job).
            if fraction - last[0] >= 0.05 or fraction >= 1.0:
                last[0] = fraction
                if not ctx.repo.set_progress(media_id, attempt, 0.05 + 0.85 * fraction):
                    cancelled[0] = True

        registry = ctx.registry() if callable(ctx.registry) else ctx.registry
        if record.kind == "video" and ctx.dispatch_split is not None and ctx.segment_min_seconds > 0:
            from media_service.segmented import plan_split  # (it imports this module)

            split = plan_split(ctx, media_id, attempt, record.recipe, source)
            if split is not None:
                ctx.dispatch_split(split)
                log.info("media %s: split into %d parts on attempt %d", media_id, len(split.plan.parts), attempt)
                return Outcome("split")
        early: EarlyPublisher | None = None
        if record.kind == "video":
            # The poster and the lowest rung are published as the pass writes them (media_service/early.py).
            early = EarlyPublisher(ctx.repo, ctx.storage, media_id, attempt, version, stored_prefix, workdir,
                                   segment_seconds=GOP_SECONDS)
            early.start()
            try:
                rendered = _render_video(registry, ctx.limits, record.recipe, source, workdir, progress,
                                         should_stop=lambda: cancelled[0], pieces=ctx.video_pieces,
                                         pieces_min_seconds=ctx.video_pieces_min_seconds)
            finally:
                early.stop()
            early.finish()
        else:
            rendered = _render_image(registry, ctx.limits, record.recipe, source, workdir, progress)
        metrics.stage_seconds(record.kind, {k: v for k, v in rendered.timings.items() if k != "total"})
        outcome = store_and_publish(ctx, record, attempt, version, rendered, registry,
                                    already=early.uploaded if early is not None else None)
        if outcome.status == "ready":
            log.info("media %s ready in %.2fs (attempt %d, %s)", media_id, time.monotonic() - started, attempt,
                     {k: round(v, 3) for k, v in rendered.timings.items()})
        return outcome
    except Cancelled:
        _discard(ctx, stored_prefix)
        log.info("media %s: cancelled on attempt %d (deleted or taken over)", media_id, attempt)
        return Outcome("skipped")
    except MediaError as err:
        _discard(ctx, stored_prefix)
        if err.retryable and attempt < ctx.max_attempts:
            ctx.repo.requeue(media_id, attempt)
            log.warning("media %s: %s on attempt %d, handed back for a retry (%s)", media_id, err.code, attempt,
                        err.detail or err.message)
            return Outcome("retry", err)
        ctx.repo.fail(media_id, err.code, err.message, attempt=attempt)
        log.warning("media %s failed: %s (%s)", media_id, err.code, err.detail or err.message)
        return Outcome("failed", err)
    except ctx.timeout_errors:
        _discard(ctx, stored_prefix)
        timeout = ToolTimeout("Processing took longer than the time limit.")
        ctx.repo.fail(media_id, timeout.code, timeout.message, attempt=attempt)
        return Outcome("failed", timeout)
    except Exception:
        # A bug or an error nobody classified: retried up to the cap (it may be transient), then failed.
        log.exception("media %s: unexpected error on attempt %d", media_id, attempt)
        _discard(ctx, stored_prefix)
        if attempt < ctx.max_attempts:
            ctx.repo.requeue(media_id, attempt)
            return Outcome("retry", InternalError())
        internal = InternalError()
        ctx.repo.fail(media_id, internal.code, internal.message, attempt=attempt)
        return Outcome("failed", internal)
    except BaseException:
        _discard(ctx, stored_prefix)
        raise
    finally:
        if heartbeat is not None:
            heartbeat.stop()
        in_progress.dec()
        shutil.rmtree(workdir, ignore_errors=True)


def store_and_publish(ctx: JobContext, record: Any, attempt: int, version: str, rendered: Rendered,
                      registry: PackRegistry, already: dict[str, StoredObject] | None = None) -> Outcome:
    """Every object under ``media/<id>/<version>/``, then the record switched to them by compare-and-set on
    the attempt (one pass and the segmented join alike). ``already``: objects stored while the pass ran (the
    same files), not sent again. What storing raises is the caller's to clean up."""
    media_id = record.id
    stored_prefix = f"{media_prefix(media_id)}{version}/"
    storing = time.monotonic()
    provenance = pack_provenance(recipe_from_dict(record.recipe), registry)
    renditions: list[dict[str, Any]] = []

    def put(key: str, path: Path, content_type: str) -> StoredObject:
        done = (already or {}).get(key)
        if done is not None and done.size == path.stat().st_size:
            return done
        return ctx.storage.put_file(key, path, content_type)

    for r in rendered.renditions:
        key = f"{stored_prefix}{r.name}"
        stored = put(key, r.path, r.content_type)
        renditions.append({**r.public(), **rendered.extra.get(r.name, {}), "key": key, "sha256": stored.sha256,
                           "packs": provenance})
    if rendered.hls_dir is not None:
        renditions.append(_store_hls(rendered, f"{stored_prefix}hls/", put) | {"packs": provenance})
    metrics.stage_seconds(record.kind, {"store": time.monotonic() - storing})
    source_facts = {**rendered.source, "bytes": record.original_bytes}
    try:
        previous = ctx.repo.publish(media_id, attempt, version=version, renditions=renditions,
                                    source=source_facts, placeholder=rendered.placeholder)
    except LookupError:
        # Deleted meanwhile, or a newer attempt owns the record: this set must not linger.
        ctx.storage.delete_prefix(stored_prefix)
        return Outcome("skipped")
    # The version it replaced, and any a dead attempt left behind (a worker killed after uploading early
    # renditions or while storing): only the published version stays.
    stale = {previous} if previous else set()
    stale |= {k[len(media_prefix(media_id)):].split("/", 1)[0] for k in ctx.storage.list_keys(media_prefix(media_id))}
    for folder in sorted(v for v in stale if _VERSION.match(v) and v != version):
        ctx.storage.delete_prefix(f"{media_prefix(media_id)}{folder}/")
    return Outcome("ready")


@dataclass
class Rendered:
    renditions: list[Rendition]
    source: dict[str, Any]
    placeholder: dict[str, str]
    timings: dict[str, float]
    extra: dict[str, dict[str, Any]] = field(default_factory=dict)  # per rendition name: duration, bitrate
    hls_dir: Path | None = None
    hls: dict[str, Any] = field(default_factory=dict)


def pack_provenance(recipe: Recipe, registry: PackRegistry) -> dict[str, str]:
    """Which pack version each item of the recipe came from, so support can tell what a note used."""
    items: dict[str, str] = {}
    if recipe.filter is not None:
        items[recipe.filter.id] = registry.looks[recipe.filter.id].pack.version
    for s in recipe.stickers:
        items[s.id] = registry.stickers[s.id].pack.version
    if recipe.music is not None:
        items[recipe.music.id] = registry.tracks[recipe.music.id].pack.version
    return items


def _render_image(registry: PackRegistry, limits: Limits, recipe: dict[str, Any], source: Path, workdir: Path,
                  progress: Callable[[float], None]) -> Rendered:
    out_dir = workdir / "out"
    out_dir.mkdir()
    job = ImageJob(source=source, recipe=recipe_from_dict(recipe), registry=registry, workdir=out_dir,
                   limits=limits, progress=progress, deadline=time.monotonic() + limits.image_job_seconds)
    run_image_pipeline(job)
    assert job.facts is not None
    return Rendered(job.renditions, job.facts.public(), job.placeholder, job.timings)


def _render_video(registry: PackRegistry, limits: Limits, recipe: dict[str, Any], source: Path, workdir: Path,
                  progress: Callable[[float], None], should_stop: Callable[[], bool] = lambda: False,
                  pieces: int = 1, pieces_min_seconds: float = DEFAULT_MIN_SECONDS) -> Rendered:
    facts = probe_video(source)
    # Again here, not only at upload: the worker trusts the stored file, not the API that took it (limits may
    # have been lowered since, or the record re-rendered under new ones).
    check_video_caps(facts, limits)
    job = render_video(source, facts, recipe_from_dict(recipe), registry, workdir, pieces=pieces,
                       min_seconds=pieces_min_seconds, limits=limits, progress=progress, should_stop=should_stop)
    return Rendered(job.renditions, facts.public(), job.placeholder, job.timings, extra=job.outputs_info,
                    hls_dir=job.hls["dir"], hls=job.hls)


def _store_hls(rendered: Rendered, prefix: str, put: Callable[[str, Path, str], StoredObject]) -> dict[str, Any]:
    """Every playlist and segment under ``prefix``; the rendition points at the master playlist."""
    assert rendered.hls_dir is not None
    total = 0
    for path in sorted(p for p in rendered.hls_dir.rglob("*") if p.is_file()):
        rel = path.relative_to(rendered.hls_dir).as_posix()
        content_type = ("application/vnd.apple.mpegurl" if path.suffix == ".m3u8"
                        else "video/iso.segment" if path.suffix == ".m4s" else "video/mp4")
        total += put(f"{prefix}{rel}", path, content_type).size
    top = rendered.hls["variants"][0]
    return {"name": "hls", "content_type": "application/vnd.apple.mpegurl", "width": top["width"],
            "height": top["height"], "bytes": total, "key": f"{prefix}{rendered.hls['master']}", "hls_prefix": prefix,
            "variants": rendered.hls["variants"], "sha256": None}


_WORKDIR = re.compile(r"^media-[0-9a-f]+-p(\d+)-")
_VERSION = re.compile(r"^v\d+-[0-9a-f]+$")  # a version folder under media/<id>/ (not "original", not "parts-…")


def sweep_stale_workdirs(root: Path | None) -> int:
    """Remove the work folders of jobs whose process is gone (killed by a hard time limit, the OOM killer or
    an operator): their own cleanup never ran. Each folder's name carries its process id."""
    removed = 0
    base = root or Path(tempfile.gettempdir())
    try:
        entries = list(base.iterdir())
    except OSError:
        return 0
    for entry in entries:
        match = _WORKDIR.match(entry.name)
        if match is None or pid_alive(int(match.group(1))):
            continue
        shutil.rmtree(entry, ignore_errors=True)
        removed += 1
        log.info("removed the work folder of a dead job process: %s", entry.name)
    return removed


def _discard(ctx: JobContext, prefix: str) -> None:
    try:
        ctx.storage.delete_prefix(prefix)
    except MediaError:
        log.warning("could not clean %s; it is unreferenced and safe to delete", prefix)
