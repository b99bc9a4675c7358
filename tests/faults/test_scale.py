"""Scaling out: stateless workers split by queue or sharing one, photos never stuck behind videos, and
per-owner fairness so one heavy uploader cannot starve the rest."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import OTHER_KEY, FaultStack
from tests.support.faults import wait_until


def handled_by(stack: FaultStack, media_id: str) -> set[str]:
    """Which workers rendered this media (their logs say "media <id> ready in …")."""
    return {name for name, proc in stack.workers.items()
            if f"media {media_id} ready in" in proc.log.read_text(errors="replace")}


def test_image_and_video_workers_split_the_work(fault_stack: FaultStack, media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    fault_stack.start_worker("images", queues="image", concurrency=1)
    fault_stack.start_worker("videos", queues="video", concurrency=1)
    videos = fault_stack.batch(media_files, photos=0, videos=3, video="video")  # a backlog of videos …
    photo = fault_stack.batch(media_files, photos=1, videos=0)  # … and then one photo
    wait_until(lambda: fault_stack.rows()[photo[0]]["status"] == "ready", 60, 0.2, "the photo ready")
    rows = fault_stack.rows()
    assert sum(rows[v]["status"] != "ready" for v in videos) >= 1  # not stuck behind them: videos still busy
    fault_stack.check_invariants(videos + photo, timeout=240)
    assert handled_by(fault_stack, photo[0]) == {"images"}
    assert all(handled_by(fault_stack, v) == {"videos"} for v in videos)


def test_two_workers_share_one_queue(fault_stack: FaultStack, media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    fault_stack.start_worker("a", queues="image", concurrency=1)
    fault_stack.start_worker("b", queues="image", concurrency=1)
    ids = fault_stack.batch(media_files, photos=10, videos=0)
    fault_stack.check_invariants(ids, timeout=180)
    by = [handled_by(fault_stack, i) for i in ids]
    assert all(len(w) == 1 for w in by)  # each photo done once, by one of them
    assert {"a", "b"} == set().union(*by)  # and both took a share


def test_one_heavy_uploader_does_not_starve_the_others(fault_stack: FaultStack,
                                                       media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    heavy = fault_stack.batch(media_files, photos=16, videos=0)  # no worker yet: a backlog builds
    status, body = fault_stack.upload(media_files["photo1"], {"aspect": "1:1"}, key=OTHER_KEY)
    assert status == 202, body
    light = body["id"]
    fault_stack.start_worker("w", queues="image", concurrency=1)
    rows = fault_stack.check_invariants([*heavy, light], timeout=240)
    order = sorted(rows, key=lambda i: rows[i]["updated_at"])
    done = [i for i in order if i in {*heavy, light}]
    # Without fairness it would be 17th of 17; the heavy uploader's first two go at the same priority.
    assert done.index(light) <= 3, done.index(light)
