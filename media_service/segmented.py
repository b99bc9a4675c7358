"""Long videos rendered by several workers at once: a split, its parts, and the join that publishes.

The flow (the Celery side is in workers/tasks.py: a chord of part tasks with the join as its callback):

1. ``process_media`` claims the record (attempt *n*, compare-and-set) and, for a video whose result lasts
   at least ``segment_min_seconds``, calls :func:`plan_split` instead of rendering: the output timeline is
   cut on the keyframe grid (pipeline/segments.py) and every part is handed to the queue. The record stays
   ``processing`` at attempt *n*; nothing is published yet.
2. Each part (a video segment, the audio, the stills) runs :func:`render_part` on any worker: it checks
   that attempt *n* still owns the record, fetches the original from storage (parts share nothing but the
   storage and the database), renders, uploads under ``media/<id>/parts-<split>/<part>/`` and writes
   ``done.json`` there last. Progress moves as parts finish.
3. The join (:func:`join_parts`) runs when every part has reported: it checks every ``done.json`` (a part
   missing means wait and look again; a part failed means the split failed), downloads the parts,
   concatenates without re-encoding, and publishes through ``store_and_publish`` under a fresh version,
   exactly as one pass does. Then the parts are deleted.

Who wins, and who cleans: every part and the join act only while attempt *n* owns the record (``processing``
with ``attempts == n``); the publish is the same compare-and-set as one pass, so a duplicated join or a
stale split never publishes twice, and a join that loses deletes only its own version. A failed split
(a part failed, timed out, or never came) deletes its parts and hands the record back like a failed pass:
queued again with a new attempt while attempts remain, ``failed`` after the cap.
"""

from __future__ import annotations

import io
import json
import logging
import os
import secrets
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

from sqlalchemy import case, update

from media_service import logs, metrics
from media_service.db.models import MediaRecord, Status, utcnow
from media_service.errors import Cancelled, DatabaseUnavailable, InternalError, MediaError, ToolTimeout
from media_service.jobs import JobContext, Outcome, Rendered, _discard, media_prefix, store_and_publish
from media_service.pipeline.segments import (
    SegmentPlan,
    join_segments,
    plan_segments,
    render_named_part,
)
from media_service.probe import VideoFacts, check_video_caps, probe_video
from media_service.recipe import output_window, recipe_from_dict

log = logging.getLogger("media_service.segmented")

DONE = "done.json"


@dataclass(frozen=True)
class Split:
    media_id: str
    attempt: int
    name: str  # unique per split: names the parts' prefix
    plan: SegmentPlan
    facts: VideoFacts

    @property
    def prefix(self) -> str:
        return f"{media_prefix(self.media_id)}parts-{self.name}/"

    def to_dict(self) -> dict[str, Any]:
        return {"media_id": self.media_id, "attempt": self.attempt, "name": self.name,
                "plan": self.plan.to_dict(), "facts": asdict(self.facts)}

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> Split:
        return cls(data["media_id"], int(data["attempt"]), data["name"], SegmentPlan.from_dict(data["plan"]),
                   VideoFacts(**data["facts"]))


def plan_split(ctx: JobContext, media_id: str, attempt: int, recipe_data: dict[str, Any], source: Path
               ) -> Split | None:
    """A split for this video, or None when it is rendered in one pass (short, or one segment anyway)."""
    facts = probe_video(source)
    check_video_caps(facts, ctx.limits)
    recipe = recipe_from_dict(recipe_data)
    _, duration = output_window(recipe, facts.duration, ctx.limits.max_video_seconds)
    if ctx.segment_min_seconds <= 0 or duration < ctx.segment_min_seconds:
        return None
    plan = plan_segments(facts, recipe, ctx.segment_seconds, ctx.limits)
    if len(plan.pieces) < 2:
        return None
    return Split(media_id, attempt, f"v{attempt}-{secrets.token_hex(4)}", plan, facts)


def owns(ctx: JobContext, split: Split) -> bool:
    record = ctx.repo.get(split.media_id)
    return record is not None and record.status == Status.PROCESSING.value and record.attempts == split.attempt


def advance_progress(ctx: JobContext, split: Split, fraction: float) -> bool:
    """Progress only moves forward (parts finish in any order). False when the attempt lost the record."""
    value = round(min(max(0.05 + 0.85 * fraction, 0.0), 1.0), 4)
    with ctx.repo.db.session() as s:
        result = s.execute(
            update(MediaRecord)
            .where(MediaRecord.id == split.media_id, MediaRecord.status == Status.PROCESSING.value,
                   MediaRecord.attempts == split.attempt)
            .values(progress=case((MediaRecord.progress < value, value), else_=MediaRecord.progress),
                    updated_at=utcnow()))
        return bool(result.rowcount == 1)  # type: ignore[attr-defined]


def finished_parts(ctx: JobContext, split: Split) -> set[str]:
    return {k[len(split.prefix):].split("/")[0] for k in ctx.storage.list_keys(split.prefix) if k.endswith("/" + DONE)}


def render_part(ctx: JobContext, split_data: dict[str, Any], part: str) -> dict[str, Any]:
    """Render one part and upload it. Never raises for the media's own errors: the outcome is returned for
    the join (a chord whose part raised would skip the join); a database outage is raised, for a retry."""
    split = Split.from_dict(split_data)
    with logs.job_context(split.media_id):
        logs.bind(kind="video", attempt=split.attempt)
        return _render_part(ctx, split, part)


def _render_part(ctx: JobContext, split: Split, part: str) -> dict[str, Any]:
    record = ctx.repo.get(split.media_id)
    if record is None or record.status != Status.PROCESSING.value or record.attempts != split.attempt:
        log.info("media %s: part %s of split %s is stale, skipped", split.media_id, part, split.name)
        return {"part": part, "status": "skipped"}
    started = time.monotonic()
    workdir = Path(tempfile.mkdtemp(prefix=f"media-{split.media_id}-p{os.getpid()}-", dir=ctx.tmp_root))
    part_prefix = f"{split.prefix}{part}/"
    cancelled = [False]
    try:
        source = workdir / "source"
        ctx.storage.get_to_file(record.original_key, source)
        fetched = time.monotonic() - started
        facts = probe_video(source)
        check_video_caps(facts, ctx.limits)
        recipe = recipe_from_dict(record.recipe)
        registry = ctx.registry() if callable(ctx.registry) else ctx.registry
        plan, n_parts = split.plan, len(split.plan.parts)
        done_before = len(finished_parts(ctx, split))
        last = [0.0]

        def progress(fraction: float) -> None:
            if fraction - last[0] >= 0.25:
                last[0] = fraction
                if not advance_progress(ctx, split, (done_before + fraction) / n_parts):
                    cancelled[0] = True

        def should_stop() -> bool:
            return cancelled[0]

        result = render_named_part(part, source, facts, recipe, registry, workdir, plan, limits=ctx.limits,
                                   progress=progress, should_stop=should_stop)
        storing = time.monotonic()
        files = {}
        for name, path in result.files.items():
            stored = ctx.storage.put_file(f"{part_prefix}{name}", path, "application/octet-stream")
            files[name] = {"size": stored.size, "sha256": stored.sha256}
        timings = {"fetch": fetched, **result.timings, "store": time.monotonic() - storing}
        marker = json.dumps({"files": files, "timings": timings, "info": result.info}).encode()
        ctx.storage.put_stream(f"{part_prefix}{DONE}", io.BytesIO(marker), "application/json")
        if not advance_progress(ctx, split, len(finished_parts(ctx, split)) / n_parts):
            ctx.storage.delete_prefix(part_prefix)  # the split went stale while this part ran
            return {"part": part, "status": "skipped"}
        metrics.stage_seconds("video", {"part_" + (part if part in ("audio", "stills") else "segment"):
                                        time.monotonic() - started})
        log.info("media %s: part %s of split %s done in %.2fs %s", split.media_id, part, split.name,
                 time.monotonic() - started, {k: round(v, 3) for k, v in timings.items()})
        return {"part": part, "status": "done", "seconds": round(time.monotonic() - started, 3)}
    except DatabaseUnavailable:
        _discard(ctx, part_prefix)
        raise
    except Cancelled:
        _discard(ctx, part_prefix)
        return {"part": part, "status": "skipped"}
    except MediaError as err:
        _discard(ctx, part_prefix)
        log.warning("media %s: part %s failed: %s (%s)", split.media_id, part, err.code, err.detail or err.message)
        return _failure(part, err)
    except ctx.timeout_errors:
        _discard(ctx, part_prefix)
        return _failure(part, ToolTimeout("Processing took longer than the time limit."))
    except Exception:
        log.exception("media %s: part %s: unexpected error", split.media_id, part)
        _discard(ctx, part_prefix)
        return _failure(part, InternalError())
    finally:
        shutil.rmtree(workdir, ignore_errors=True)


def _failure(part: str, err: MediaError) -> dict[str, Any]:
    return {"part": part, "status": "failed", "code": err.code, "message": err.message, "retryable": err.retryable}


def join_parts(ctx: JobContext, split_data: dict[str, Any], results: list[Any], *, last_look: bool = False
               ) -> Outcome:
    """The chord's callback. Outcomes: ``ready``; ``skipped`` (stale or lost the race); ``wait`` (a part's
    done.json is not there yet: look again later; with ``last_look`` that is a failure); ``retry`` (the
    split failed and the record is queued again: send it to process_media); ``failed``."""
    split = Split.from_dict(split_data)
    with logs.job_context(split.media_id):
        logs.bind(kind="video", attempt=split.attempt)
        return _join_parts(ctx, split, results, last_look)


def _join_parts(ctx: JobContext, split: Split, results: list[Any], last_look: bool) -> Outcome:
    started = time.monotonic()
    record = ctx.repo.get(split.media_id)
    if record is None or record.status != Status.PROCESSING.value or record.attempts != split.attempt:
        _discard(ctx, split.prefix)
        log.info("media %s: join of split %s is stale, skipped", split.media_id, split.name)
        return Outcome("skipped")
    failures = [r for r in results if isinstance(r, dict) and r.get("status") == "failed"]
    if failures:
        f = failures[0]
        return abandon(ctx, split, str(f.get("code", "internal_error")), str(f.get("message", "")),
                       retryable=bool(f.get("retryable")), detail=f"part {f.get('part')} failed")
    missing = [p for p in split.plan.parts if p not in finished_parts(ctx, split)]
    if missing:
        if not last_look:
            log.info("media %s: join of split %s waits for %s", split.media_id, split.name, missing)
            return Outcome("wait")
        return abandon_with(ctx, split, InternalError(detail=f"parts never arrived: {missing}"))
    version = f"v{split.attempt}-{secrets.token_hex(4)}"
    stored_prefix = f"{media_prefix(split.media_id)}{version}/"
    workdir = Path(tempfile.mkdtemp(prefix=f"media-{split.media_id}-p{os.getpid()}-", dir=ctx.tmp_root))
    in_progress = metrics.JOBS_IN_PROGRESS.labels(kind="video")
    in_progress.inc()
    try:
        fetching = time.monotonic()
        part_seconds: dict[str, float] = {}
        for part in split.plan.parts:
            marker = json.loads(b"".join(ctx.storage.iter_bytes(f"{split.prefix}{part}/{DONE}")))
            part_seconds[part] = sum(v for k, v in marker["timings"].items() if k != "total")
            for name in marker["files"]:
                ctx.storage.get_to_file(f"{split.prefix}{part}/{name}", workdir / split.plan.local_name(part, name))
        fetched = time.monotonic() - fetching
        registry = ctx.registry() if callable(ctx.registry) else ctx.registry
        recipe = recipe_from_dict(record.recipe)
        job = join_segments(workdir, split.facts, recipe, registry, split.plan, limits=ctx.limits)
        timings = {"fetch_parts": fetched, **{k: v for k, v in job.timings.items() if k != "total"}}
        rendered = Rendered(job.renditions, split.facts.public(), job.placeholder, timings,
                            extra=job.outputs_info, hls_dir=job.hls["dir"], hls=job.hls)
        metrics.stage_seconds("video", timings)
        outcome = store_and_publish(ctx, record, split.attempt, version, rendered, registry)
        _discard(ctx, split.prefix)
        if outcome.status == "ready":
            log.info("media %s ready by split %s (%d parts) in %.2fs of join (attempt %d, parts %s)",
                     split.media_id, split.name, len(split.plan.parts), time.monotonic() - started, split.attempt,
                     {k: round(v, 2) for k, v in part_seconds.items()})
        return outcome
    except DatabaseUnavailable:
        _discard(ctx, stored_prefix)
        raise
    except MediaError as err:
        _discard(ctx, stored_prefix)
        return abandon_with(ctx, split, err)
    except ctx.timeout_errors:
        _discard(ctx, stored_prefix)
        return abandon_with(ctx, split, ToolTimeout("Processing took longer than the time limit."))
    except Exception:
        log.exception("media %s: join of split %s: unexpected error", split.media_id, split.name)
        _discard(ctx, stored_prefix)
        return abandon_with(ctx, split, InternalError())
    finally:
        in_progress.dec()
        shutil.rmtree(workdir, ignore_errors=True)


def abandon_with(ctx: JobContext, split: Split, err: MediaError) -> Outcome:
    return abandon(ctx, split, err.code, err.message, retryable=err.retryable, detail=err.detail)


def abandon(ctx: JobContext, split: Split, code: str, message: str, *, retryable: bool, detail: str | None = None
            ) -> Outcome:
    """The split failed: its parts are deleted and the record handed back as a failed pass would be (queued
    again while attempts remain and the error is retryable — the caller sends it to process_media — else
    failed). A stale split changes nothing."""
    _discard(ctx, split.prefix)
    if not owns(ctx, split):
        return Outcome("skipped")
    err = MediaError(message, detail=detail)
    if retryable and split.attempt < ctx.max_attempts:
        ctx.repo.requeue(split.media_id, split.attempt)
        log.warning("media %s: split %s failed (%s: %s), queued again", split.media_id, split.name, code,
                    detail or message)
        return Outcome("retry", err)
    ctx.repo.fail(split.media_id, code, message, attempt=split.attempt)
    log.warning("media %s: split %s failed: %s (%s)", split.media_id, split.name, code, detail or message)
    return Outcome("failed", err)
