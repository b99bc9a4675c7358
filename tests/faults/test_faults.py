"""Fault injection on real processes: each test drives a mixed batch of photos and a video, injects one
fault, and checks the invariants (FaultStack.check_invariants): every accepted media terminal within a
bound, attempts under the cap, every ready record's objects present with their size and checksum, one
stored version, no partial set ever seen by a reader, no ffmpeg or work folder left behind."""

from __future__ import annotations

import signal
import time
from pathlib import Path

from celery import Celery

from media_service.queue import QUEUE_FOR_KIND, TASK_FOR_KIND
from tests.faults.conftest import MAX_ATTEMPTS, VISIBILITY_TIMEOUT, FaultStack, Reader
from tests.support.faults import children_of, kill, processes_named, wait_until


def _ffmpeg_of(stack: FaultStack, media_id: str) -> list[int]:
    """ffmpeg processes working on this media (their working folder is the job's)."""
    out = []
    for pid in processes_named("ffmpeg", ""):
        try:
            cwd = Path(f"/proc/{pid}/cwd").readlink()
        except OSError:
            continue
        if cwd.is_relative_to(stack.tmp) and f"media-{media_id}-" in str(cwd):
            out.append(pid)
    return out


def _parent(pid: int) -> int:
    return int(Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[1])


def _wait_encoding(stack: FaultStack, media_id: str, timeout: float = 90, avoid: str | None = None) -> int:
    """The pid of an ffmpeg encoding this video (after its loudness pass) that has been at it for 0.5 s and
    still is; ``avoid``: not one whose command line holds this (a short part that may end any moment)."""
    first_seen: dict[int, float] = {}
    found: list[int] = []

    def encoding() -> bool:
        now = time.monotonic()
        alive = []
        for pid in _ffmpeg_of(stack, media_id):
            try:
                cmdline = Path(f"/proc/{pid}/cmdline").read_text()
            except OSError:
                continue
            if "-progress" in cmdline and (avoid is None or avoid not in cmdline):
                alive.append(pid)
                first_seen.setdefault(pid, now)
        found[:] = [p for p in alive if now - first_seen[p] >= 0.5]
        return bool(found) and stack.rows()[media_id]["status"] == "processing"

    wait_until(encoding, timeout, 0.1, "ffmpeg encoding the video")
    return found[0]


def test_pool_process_killed_mid_video(fault_stack: FaultStack, media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    fault_stack.start_worker("w1")
    reader = Reader(fault_stack)
    ids = fault_stack.batch(media_files, photos=4, videos=1, video="video")
    video = ids[-1]
    encoder = _wait_encoding(fault_stack, video)
    pool = _parent(encoder)
    assert pool in children_of(fault_stack.workers["w1"].proc.pid)
    kill(pool)  # the pool process dies with the job half done; its ffmpeg must die with it
    rows = fault_stack.check_invariants(ids, timeout=180)
    assert rows[video]["attempts"] == 2  # the job was handed to another pool process and finished there
    reader.stop()
    assert reader.violations == [] and reader.reads > 0


def test_whole_worker_killed_job_completes_elsewhere(fault_stack: FaultStack, media_files: dict[str, Path]) -> None:
    """kill -9 of the worker and its pool: Redis hands the unacknowledged job to another worker once the
    visibility timeout (VISIBILITY_TIMEOUT s here, MEDIA_VISIBILITY_TIMEOUT) has passed."""
    fault_stack.start_api()
    fault_stack.start_worker("w1")
    reader = Reader(fault_stack)
    ids = fault_stack.batch(media_files, photos=2, videos=1, video="video")
    video = ids[-1]
    _wait_encoding(fault_stack, video)
    w1 = fault_stack.workers.pop("w1")
    for pid in [w1.proc.pid, *children_of(w1.proc.pid)]:
        kill(pid)
    w1.proc.wait()
    killed_at = time.monotonic()
    fault_stack.start_worker("w2")
    rows = fault_stack.check_invariants(ids, timeout=VISIBILITY_TIMEOUT + 150)
    assert rows[video]["attempts"] == 2
    assert time.monotonic() - killed_at >= VISIBILITY_TIMEOUT - 2  # it waited for the timeout, as configured
    reader.stop()
    assert reader.violations == []


def test_sigterm_during_a_deploy_finishes_in_flight_work(fault_stack: FaultStack,
                                                         media_files: dict[str, Path]) -> None:
    """SIGTERM to the worker's main process (what `docker stop` and systemd's KillMode=mixed send): a warm
    shutdown finishes the job in hand and takes no more; the queued ones wait for the next worker."""
    fault_stack.start_api()
    fault_stack.start_worker("w1", concurrency=1)
    ids = fault_stack.batch(media_files, photos=3, videos=1, video="video")
    video = ids[-1]
    _wait_encoding(fault_stack, video)
    w1 = fault_stack.workers.pop("w1")
    w1.proc.send_signal(signal.SIGTERM)
    w1.proc.wait(timeout=180)
    rows = fault_stack.rows()
    assert rows[video]["status"] == "ready" and rows[video]["attempts"] == 1  # finished, not abandoned
    fault_stack.start_worker("w2")
    fault_stack.check_invariants(ids, timeout=120)


def test_redis_restarted_with_jobs_queued_and_in_flight(fault_stack: FaultStack,
                                                        media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    fault_stack.start_worker("w1", concurrency=1)
    reader = Reader(fault_stack)
    ids = fault_stack.batch(media_files, photos=4, videos=1)
    fault_stack.redis.restart(down_for=2.0)  # persistence on: queued and unacknowledged jobs survive
    ids += fault_stack.batch(media_files, photos=2, videos=0)  # and uploads work again afterwards
    fault_stack.check_invariants(ids, timeout=VISIBILITY_TIMEOUT + 180)
    reader.stop()
    assert reader.violations == []


def test_broker_unreachable_refuses_uploads_and_loses_nothing(fault_stack: FaultStack,
                                                              media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    fault_stack.start_worker("w1")
    ids = fault_stack.batch(media_files, photos=2, videos=0)
    fault_stack.redis.stop()
    refused = [fault_stack.upload(media_files["photo1"]) for _ in range(3)]
    assert all(status == 503 and body["error"]["code"] == "broker_unavailable" for status, body in refused)
    # Nothing of a refused upload was kept: no record, no object.
    assert set(fault_stack.rows()) == set(ids)
    assert {k.split("/")[1] for k in fault_stack.storage.list_keys("media/")} <= set(ids)
    fault_stack.redis.start()
    ids += fault_stack.batch(media_files, photos=2, videos=1)
    fault_stack.check_invariants(ids, timeout=VISIBILITY_TIMEOUT + 150)


def test_s3_errors_and_slowness_are_retried_without_partial_publish(fault_stack: FaultStack,
                                                                    media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    fault_stack.start_worker("w1")
    reader = Reader(fault_stack)
    ids = fault_stack.batch(media_files, photos=3, videos=1)
    # While the workers store their renditions: a burst of 503s on writes, then 500s and a slow spell.
    faults = fault_stack.s3_faults
    faults.status, faults.methods, faults.fail_next = 503, {"PUT", "POST"}, 8
    wait_until(lambda: faults.fail_next == 0, 60, 0.2, "the 503 burst consumed")
    faults.status, faults.methods, faults.fail_next, faults.delay = 500, set(), 4, 0.3
    # An upload meanwhile is either accepted or refused with nothing kept.
    status, body = fault_stack.upload(media_files["photo2"], {"aspect": "1:1"})
    if status == 202:
        ids.append(body["id"])
    else:
        assert status == 503 and body["error"]["code"] == "storage_unavailable", body
    wait_until(lambda: faults.fail_next == 0, 60, 0.2, "the 500s consumed")
    faults.delay = 0.0
    fault_stack.check_invariants(ids, timeout=240)
    assert faults.failed >= 12
    reader.stop()
    assert reader.violations == []
    assert {k.split("/")[1] for k in fault_stack.storage.list_keys("media/")} <= {*ids, *fault_stack.accepted}


def test_failed_rerender_keeps_the_previous_version_serving(fault_stack: FaultStack,
                                                            media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    fault_stack.start_worker("w1")
    ids = fault_stack.batch(media_files, photos=1, videos=0)
    fault_stack.check_invariants(ids, timeout=60)
    before = fault_stack.rows()[ids[0]]
    fault_stack.s3_faults.status, fault_stack.s3_faults.methods = 503, {"PUT", "POST"}
    fault_stack.s3_faults.fail_next = 10_000  # storage refuses every write for the whole re-render
    import urllib.request

    req = urllib.request.Request(f"{fault_stack.base_url}/v1/media/{ids[0]}/rerender", method="POST",
                                 headers={"Authorization": "Bearer fault-key"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 202
    wait_until(lambda: fault_stack.rows()[ids[0]]["error_code"] is not None, 240, 0.5, "re-render given up")
    fault_stack.s3_faults.fail_next = 0
    after = fault_stack.rows()[ids[0]]
    # Given up after the attempt cap; the record is ready again, serving the set it had, and says why.
    assert after["status"] == "ready" and after["attempts"] == MAX_ATTEMPTS
    assert after["error_code"] == "storage_unavailable"
    assert after["version"] == before["version"] and after["renditions"] == before["renditions"]
    assert fault_stack.missing_objects(after) == []  # the old set is still there to serve
    status, view = fault_stack.get(f"/v1/media/{ids[0]}")
    assert status == 200 and view["status"] == "ready" and view["error"]["code"] == "storage_unavailable"


def test_database_restart_gives_503_and_recovers(fault_stack: FaultStack, media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    fault_stack.start_worker("w1")
    ids = fault_stack.batch(media_files, photos=3, videos=1)
    fault_stack.pg.cut()  # every connection reset, new ones refused: the database is restarting
    status, body = fault_stack.get(f"/v1/media/{ids[0]}")
    assert status == 503 and body["error"]["code"] == "database_unavailable"
    status, _ = fault_stack.get("/readyz")
    assert status == 503
    status, body = fault_stack.upload(media_files["photo0"])
    assert status == 503
    time.sleep(4)
    fault_stack.pg.restore()
    wait_until(lambda: fault_stack.get("/readyz")[0] == 200, 30, 0.5, "API ready again")
    assert fault_stack.get(f"/v1/media/{ids[0]}")[0] == 200
    fault_stack.check_invariants(ids, timeout=180)


def test_same_job_delivered_twice_at_once_publishes_once(fault_stack: FaultStack,
                                                         media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    ids = fault_stack.batch(media_files, photos=3, videos=1)  # no worker yet: the jobs wait
    sender = Celery(broker=fault_stack.redis.url)
    rows = fault_stack.rows()
    for media_id in ids:
        kind = rows[media_id]["kind"]
        sender.send_task(TASK_FOR_KIND[kind], args=[media_id], queue=QUEUE_FOR_KIND[kind])  # a duplicate
    fault_stack.start_worker("w1", concurrency=2)
    fault_stack.start_worker("w2", concurrency=2)
    rows = fault_stack.check_invariants(ids, timeout=180)
    assert all(rows[i]["attempts"] <= 2 for i in ids)


def test_poison_input_that_kills_its_worker_ends_failed(fault_stack: FaultStack,
                                                        media_files: dict[str, Path]) -> None:
    """Whatever picks this video up dies mid-job (here the test kills it, as a crashing decoder would):
    after the attempt cap it ends ``failed``, it does not loop, and the other media go through."""
    fault_stack.start_api()
    fault_stack.start_worker("w1")
    ids = fault_stack.batch(media_files, photos=2, videos=1, video="video")
    poison = ids[-1]
    kills = 0
    deadline = time.monotonic() + 240
    while fault_stack.rows()[poison]["status"] != "failed" and time.monotonic() < deadline:
        for pid in _ffmpeg_of(fault_stack, poison):
            try:
                kill(_parent(pid))
                kills += 1
            except OSError:
                pass
        time.sleep(0.2)
    row = fault_stack.rows()[poison]
    assert row["status"] == "failed" and row["error_code"] == "attempts_exhausted", row
    assert kills >= MAX_ATTEMPTS and row["attempts"] == MAX_ATTEMPTS
    fault_stack.check_invariants(ids[:-1], timeout=120)


def test_lost_broker_message_is_queued_again_by_the_reconciler(fault_stack: FaultStack,
                                                               media_files: dict[str, Path]) -> None:
    """A broker that loses its messages (a flush, a Redis without persistence): the database still knows
    the media is queued, and the reconciler queues it again once it has waited too long."""
    fault_stack.env["MEDIA_STUCK_QUEUED_SECONDS"] = "8"
    fault_stack.start_api()
    ids = fault_stack.batch(media_files, photos=2, videos=0)
    import redis

    redis.Redis.from_url(fault_stack.redis.url).flushall()
    fault_stack.start_worker("w1")
    fault_stack.check_invariants(ids, timeout=90)


def test_deleting_a_video_while_it_renders_cancels_the_job(fault_stack: FaultStack,
                                                           media_files: dict[str, Path]) -> None:
    """DELETE while a worker renders: its ffmpeg is killed at the next progress mark, nothing is published
    or left in storage, and the worker goes on with the next job."""
    import urllib.request

    fault_stack.start_api()
    fault_stack.start_worker("w1")
    ids = fault_stack.batch(media_files, photos=0, videos=1, video="video")
    encoder = _wait_encoding(fault_stack, ids[0])
    req = urllib.request.Request(f"{fault_stack.base_url}/v1/media/{ids[0]}", method="DELETE",
                                 headers={"Authorization": "Bearer fault-key"})
    with urllib.request.urlopen(req, timeout=30) as resp:
        assert resp.status == 204
    wait_until(lambda: not Path(f"/proc/{encoder}").exists(), 20, 0.2, "ffmpeg stopped")
    assert fault_stack.rows().get(ids[0]) is None
    wait_until(lambda: fault_stack.storage.list_keys(f"media/{ids[0]}/") == [], 20, 0.5, "nothing stored")
    fault_stack.accepted.remove(ids[0])
    fault_stack.check_no_leftovers()
