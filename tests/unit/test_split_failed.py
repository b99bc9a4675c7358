"""The segmented path's error callback (workers.tasks.video_split_failed → segmented.abandon_with): when
Celery itself fails a part (hard time limit, database retries exhausted), the chord never calls the join, so
the callback must clean the parts and hand the record back, or fail it, exactly as a failed pass would."""

from __future__ import annotations

import dataclasses
import io
from pathlib import Path

import pytest

from media_service.db import Database, MediaRecord, MediaRepo, Status
from media_service.errors import InternalError, ToolTimeout
from media_service.jobs import JobContext
from media_service.limits import DEFAULT_LIMITS
from media_service.packs import load_registry
from media_service.pipeline.segments import Piece, SegmentPlan
from media_service.probe import VideoFacts
from media_service.segmented import Split, abandon_with
from media_service.storage import LocalStorage

FACTS = VideoFacts("mov,mp4", 20.0, 480, 854, 0, 30.0, 30.0, False, "h264", "yuv420p", 8, "bt709", "bt709",
                   "bt709", "tv", True, "aac", 2, 48000, 600)
PLAN = SegmentPlan(30.0, 20.0, 600, (Piece(0, 0, 300), Piece(1, 300, 300)), True, ("480p",))


@pytest.fixture()
def ctx(tmp_path: Path) -> JobContext:
    db = Database(f"sqlite:///{tmp_path / 'media.db'}")
    db.create_all()
    storage = LocalStorage(tmp_path / "storage", public_base_url="http://x", signing_secret=b"s")
    return JobContext(MediaRepo(db), storage, load_registry([], []), DEFAULT_LIMITS, max_attempts=2,
                      tmp_root=tmp_path)


def split_in_flight(ctx: JobContext) -> Split:
    ctx.repo.create(MediaRecord(id="v1", owner="o", kind="video", status=Status.QUEUED.value, progress=0.0,
                                recipe={}, source={}, renditions=[], original_key="media/v1/original",
                                original_bytes=1, original_format="mp4", attempts=0))
    attempt = ctx.repo.claim("v1", ctx.max_attempts).attempt
    split = Split("v1", attempt, f"v{attempt}-abcd", PLAN, FACTS)
    for part in ("s000", "audio"):  # what finished before the part that Celery killed
        ctx.storage.put_stream(f"{split.prefix}{part}/done.json", io.BytesIO(b"{}"), "application/json")
    return split


def test_a_part_killed_by_celery_hands_the_record_back_and_removes_the_parts(ctx: JobContext) -> None:
    split = split_in_flight(ctx)
    outcome = abandon_with(ctx, split, InternalError(detail="a part failed in Celery"))
    assert outcome.status == "retry"  # the worker then sends process_video for the next attempt
    record = ctx.repo.get("v1")
    assert record is not None and record.status == "queued" and record.attempts == 1
    assert ctx.storage.list_keys(split.prefix) == []


def test_on_the_last_attempt_it_fails(ctx: JobContext) -> None:
    split = split_in_flight(ctx)
    last = dataclasses.replace(ctx, max_attempts=split.attempt)
    outcome = abandon_with(last, split, ToolTimeout("Processing took longer than the time limit."))
    assert outcome.status == "failed"
    record = ctx.repo.get("v1")
    assert record is not None and record.status == "failed" and record.error_code == "tool_timeout"
    assert ctx.storage.list_keys(split.prefix) == []


def test_a_stale_split_changes_nothing(ctx: JobContext) -> None:
    split = split_in_flight(ctx)
    ctx.repo.requeue("v1", split.attempt)
    ctx.repo.claim("v1", ctx.max_attempts)  # attempt 2 owns the record now
    assert abandon_with(ctx, split, InternalError()).status == "skipped"
    record = ctx.repo.get("v1")
    assert record is not None and record.status == "processing" and record.attempts == 2
    assert ctx.storage.list_keys(split.prefix) == []
