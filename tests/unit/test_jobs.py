"""The ledger's state machine and one job run on embedded components (SQLite, local disk): attempts are
capped, a stale or deleted attempt never publishes, and a failed run leaves no objects behind."""

from __future__ import annotations

from pathlib import Path

import pytest

from media_service.db import Database, MediaRecord, MediaRepo, Status
from media_service.jobs import JobContext, media_prefix, original_key, process_media
from media_service.limits import DEFAULT_LIMITS
from media_service.packs import load_registry
from media_service.storage import LocalStorage
from tests.support.media import quadrant_image, save_jpeg
from tests.support.packs import write_look_pack, write_sticker_pack


@pytest.fixture()
def ctx(tmp_path: Path) -> JobContext:
    db = Database(f"sqlite:///{tmp_path / 'media.db'}")
    db.create_all()
    storage = LocalStorage(tmp_path / "storage", public_base_url="http://x", signing_secret=b"s")
    registry = load_registry([write_look_pack(tmp_path / "f")], [write_sticker_pack(tmp_path / "s")])
    return JobContext(MediaRepo(db), storage, registry, DEFAULT_LIMITS, max_attempts=3, tmp_root=tmp_path)


def add(ctx: JobContext, data: bytes, media_id: str = "m1", recipe: dict[str, object] | None = None) -> None:
    stored = ctx.storage.put_stream(original_key(media_id), __import__("io").BytesIO(data), "image/jpeg")
    ctx.repo.create(MediaRecord(id=media_id, owner="o", kind="image", status=Status.QUEUED.value, progress=0.0,
                                recipe=recipe or {}, source={}, renditions=[], original_key=stored.key,
                                original_bytes=stored.size, original_format="jpeg", attempts=0))


def test_claim_is_capped(ctx: JobContext) -> None:
    add(ctx, b"x")
    attempts = [ctx.repo.claim("m1", 3) for _ in range(4)]
    assert [c.reason for c in attempts] == ["claimed", "claimed", "claimed", "exhausted"]
    assert [c.attempt for c in attempts[:3]] == [1, 2, 3]
    assert ctx.repo.claim("nope", 3).reason == "gone"


def test_stale_attempt_cannot_publish(ctx: JobContext) -> None:
    add(ctx, b"x")
    first = ctx.repo.claim("m1", 3)
    second = ctx.repo.claim("m1", 3)  # redelivered while the first was still running
    with pytest.raises(LookupError):
        ctx.repo.publish("m1", first.attempt, version="v1-a", renditions=[], source={}, placeholder=None)
    ctx.repo.publish("m1", second.attempt, version="v2-b", renditions=[], source={}, placeholder=None)
    record = ctx.repo.get("m1")
    assert record is not None and record.status == "ready" and record.version == "v2-b"
    assert ctx.repo.claim("m1", 3).reason == "done"


def test_process_publishes_a_complete_set(ctx: JobContext, tmp_path: Path) -> None:
    add(ctx, save_jpeg(quadrant_image(1600, 1200), tmp_path / "p.jpg").read_bytes(),
        recipe={"aspect": "1:1", "filter": {"id": "tlooks/warm"}})
    assert process_media(ctx, "m1").status == "ready"
    record = ctx.repo.get("m1")
    assert record is not None and record.status == "ready" and record.progress == 1.0 and record.attempts == 1
    keys = set(ctx.storage.list_keys(media_prefix("m1")))
    assert keys == {original_key("m1")} | {r["key"] for r in record.renditions}
    for r in record.renditions:
        stat = ctx.storage.stat(r["key"])
        assert stat is not None and stat.size == r["bytes"] and stat.sha256 == r["sha256"]
    assert not list(tmp_path.glob("media-m1-*"))  # the job's temp dir is gone
    assert process_media(ctx, "m1").status == "skipped"  # a duplicate delivery does nothing


def test_corrupt_input_fails_and_leaves_nothing(ctx: JobContext, tmp_path: Path) -> None:
    whole = save_jpeg(quadrant_image(800, 600), tmp_path / "p.jpg").read_bytes()
    add(ctx, whole[:400])
    outcome = process_media(ctx, "m1")
    assert outcome.status == "failed" and outcome.error is not None and outcome.error.code == "corrupt_media"
    record = ctx.repo.get("m1")
    assert record is not None and record.status == "failed" and record.error_code == "corrupt_media"
    assert ctx.storage.list_keys(media_prefix("m1")) == [original_key("m1")]
    assert not list(tmp_path.glob("media-m1-*"))


def test_deleted_while_processing_leaves_no_renditions(ctx: JobContext, tmp_path: Path) -> None:
    add(ctx, save_jpeg(quadrant_image(800, 600), tmp_path / "p.jpg").read_bytes())
    real_publish = ctx.repo.publish

    def delete_then_publish(*args: object, **kwargs: object) -> str | None:
        ctx.repo.delete("m1", "o")
        return real_publish(*args, **kwargs)  # type: ignore[arg-type]

    ctx.repo.publish = delete_then_publish  # type: ignore[method-assign]
    assert process_media(ctx, "m1").status == "skipped"
    assert [k for k in ctx.storage.list_keys(media_prefix("m1")) if k != original_key("m1")] == []


def test_exhausted_record_is_failed(ctx: JobContext) -> None:
    add(ctx, b"x")
    for _ in range(3):
        ctx.repo.claim("m1", 3)
    outcome = process_media(ctx, "m1")
    assert outcome.status == "failed"
    record = ctx.repo.get("m1")
    assert record is not None and record.error_code == "attempts_exhausted"


def test_unexpected_error_is_retried_then_failed(ctx: JobContext, tmp_path: Path) -> None:
    add(ctx, save_jpeg(quadrant_image(800, 600), tmp_path / "p.jpg").read_bytes())

    def broken(*_args: object, **_kwargs: object) -> None:
        raise RuntimeError("a bug")

    ctx.storage.put_file = broken  # type: ignore[method-assign]
    assert [process_media(ctx, "m1").status for _ in range(3)] == ["retry", "retry", "failed"]
    record = ctx.repo.get("m1")
    assert record is not None and record.status == "failed" and record.error_code == "internal_error"
    assert record.attempts == 3


class FakeTimeLimit(Exception):
    pass


def test_time_limit_fails_without_retry(ctx: JobContext, tmp_path: Path) -> None:
    add(ctx, save_jpeg(quadrant_image(800, 600), tmp_path / "p.jpg").read_bytes())
    ctx.timeout_errors = (FakeTimeLimit,)

    def slow(*_args: object, **_kwargs: object) -> None:
        raise FakeTimeLimit()

    ctx.storage.put_file = slow  # type: ignore[method-assign]
    assert process_media(ctx, "m1").status == "failed"
    record = ctx.repo.get("m1")
    assert record is not None and record.error_code == "tool_timeout"


def test_worker_checks_video_caps_again(ctx: JobContext, tmp_path: Path) -> None:
    """The worker does not trust that the API checked: a stored video over today's caps fails, unrendered."""
    import dataclasses
    import io

    from tests.support.video import make_video

    video = make_video(tmp_path / "v.mp4", width=320, height=240, seconds=1.0)
    stored = ctx.storage.put_stream(original_key("v1"), io.BytesIO(video.read_bytes()), "video/mp4")
    ctx.repo.create(MediaRecord(id="v1", owner="o", kind="video", status=Status.QUEUED.value, progress=0.0,
                                recipe={}, source={}, renditions=[], original_key=stored.key,
                                original_bytes=stored.size, original_format="mp4", attempts=0))
    ctx.limits = dataclasses.replace(ctx.limits, max_video_pixels=320 * 240 - 1)
    outcome = process_media(ctx, "v1")
    assert outcome.status == "failed" and outcome.error is not None and outcome.error.code == "video_too_large"
    assert ctx.storage.list_keys(media_prefix("v1")) == [original_key("v1")]


def test_a_live_attempt_is_not_taken_over_a_silent_one_is(ctx: JobContext) -> None:
    """A duplicate message for a record whose job is alive (beating within the lease) is told "busy" and
    leaves it alone, even on the last attempt; once the job has been silent for a lease, a message takes over."""
    from datetime import timedelta

    from sqlalchemy import update

    from media_service.db.models import utcnow

    add(ctx, b"x")
    first = ctx.repo.claim("m1", 2, lease_seconds=30)
    assert first.reason == "claimed"
    assert ctx.repo.claim("m1", 2, lease_seconds=30).reason == "busy"
    assert ctx.repo.touch("m1", first.attempt)
    with ctx.repo.db.session() as s:  # the job's worker died: no heartbeat since 31 s ago
        s.execute(update(MediaRecord).where(MediaRecord.id == "m1").values(updated_at=utcnow() - timedelta(seconds=31)))
    second = ctx.repo.claim("m1", 2, lease_seconds=30)
    assert second.reason == "claimed" and second.attempt == 2
    assert not ctx.repo.touch("m1", first.attempt)  # the dead attempt, were it to beat again, learns it lost
    assert ctx.repo.claim("m1", 2, lease_seconds=30).reason == "busy"  # the last attempt, alive: not "exhausted"
    with ctx.repo.db.session() as s:
        s.execute(update(MediaRecord).where(MediaRecord.id == "m1").values(updated_at=utcnow() - timedelta(seconds=31)))
    assert ctx.repo.claim("m1", 2, lease_seconds=30).reason == "exhausted"


def test_a_duplicate_message_waits_for_the_running_job(ctx: JobContext) -> None:
    import dataclasses

    add(ctx, save_jpeg(quadrant_image(64, 48), ctx.tmp_root / "p.jpg").read_bytes())  # type: ignore[operator]
    leased = dataclasses.replace(ctx, lease_seconds=30)
    assert ctx.repo.claim("m1", 3, lease_seconds=30).reason == "claimed"  # another worker runs it
    assert process_media(leased, "m1").status == "busy"
    record = ctx.repo.get("m1")
    assert record is not None and record.status == "processing" and record.attempts == 1


def test_a_long_video_is_rendered_in_pieces_and_published(ctx: JobContext, tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """JobContext.video_pieces reaches the render: a result over the minimum goes through the pieces (and is
    published like one pass), a shorter one does not."""
    import dataclasses
    import io

    from media_service.pipeline import pieces
    from tests.support.video import make_video

    calls: list[int] = []
    real = pieces.render_in_pieces

    def spy(*args: object, **kwargs: object) -> object:
        calls.append(int(args[5]))  # type: ignore[call-overload]
        return real(*args, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(pieces, "render_in_pieces", spy)
    ctx = dataclasses.replace(ctx, video_pieces=2, video_pieces_min_seconds=8.0)
    for media_id, seconds in (("long", 8.0), ("short", 6.0)):
        video = make_video(tmp_path / f"{media_id}.mp4", width=320, height=240, seconds=seconds)
        stored = ctx.storage.put_stream(original_key(media_id), io.BytesIO(video.read_bytes()), "video/mp4")
        ctx.repo.create(MediaRecord(id=media_id, owner="o", kind="video", status=Status.QUEUED.value, progress=0.0,
                                    recipe={"filter": {"id": "tlooks/warm"}}, source={}, renditions=[],
                                    original_key=stored.key, original_bytes=stored.size, original_format="mp4",
                                    attempts=0))
        assert process_media(ctx, media_id).status == "ready"
        record = ctx.repo.get(media_id)
        assert record is not None and record.status == Status.READY.value
        names = {r["name"] for r in record.renditions}
        assert {"240p.mp4", "hls", "poster.jpg", "preview.webp"} <= names, names
    assert calls == [2]  # only the 8 s one
