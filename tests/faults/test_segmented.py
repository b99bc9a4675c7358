"""A long video rendered by segments on two workers at once (a Celery chord on the Redis result backend),
joined without re-encoding, published once; and the same when a part's worker process is killed mid-part."""

from __future__ import annotations

import itertools
import json
import subprocess
import threading
from pathlib import Path

import pytest

from tests.faults.conftest import FaultStack, Reader
from tests.faults.test_faults import _parent, _wait_encoding
from tests.support.faults import children_of, kill
from tests.support.video import keyframe_times, make_video, probe, stream

SECONDS = 16.0
RECIPE = {"aspect": "9:16", "cover": {"time": 5.0}}


@pytest.fixture(scope="module")
def long_video(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_video(tmp_path_factory.mktemp("long") / "long.mp4", width=360, height=640, seconds=SECONDS,
                      video="testsrc2=size=360x640:rate=30")


def _segmented_stack(stack: FaultStack) -> None:
    # Four segments of 4 s (two GOPs each), the audio and the stills: six parts for two workers (which take
    # photos too: the leftover check sends one).
    stack.env |= {"MEDIA_SEGMENT_MIN_SECONDS": "10", "MEDIA_SEGMENT_SECONDS": "4"}
    stack.start_api()
    stack.start_worker("w1", queues="video,image", concurrency=1)
    stack.start_worker("w2", queues="video,image", concurrency=1)


def _parts_by_worker(stack: FaultStack, media_id: str) -> dict[str, list[str]]:
    done: dict[str, list[str]] = {}
    for name, proc in stack.workers.items():
        for line in proc.log.read_text(errors="replace").splitlines():
            if media_id in line and " of split " in line and " done in " in line:
                done.setdefault(name, []).append(line.split("part ")[1].split(" ")[0])
    return done


def _watch_progress(stack: FaultStack, media_id: str, seen: list[float], stop: threading.Event) -> None:
    while not stop.wait(0.2):
        _, body = stack.get(f"/v1/media/{media_id}")
        if body.get("status") == "processing":
            seen.append(float(body.get("progress", 0.0)))


def _check_joined(stack: FaultStack, media_id: str, tmp_path: Path) -> None:
    row = stack.rows()[media_id]
    names = {r["name"]: r for r in row["renditions"] if r.get("role") != "cover_candidate"}
    assert set(names) == {"360p.mp4", "hls", "poster.webp", "poster.jpg", "preview.webp"}
    # Cover candidates too: each segment sampled its frames, the join scored them.
    assert len([r for r in row["renditions"] if r.get("role") == "cover_candidate"]) == 6
    path = tmp_path / "360p.mp4"
    stack.storage.get_to_file(names["360p.mp4"]["key"], path)
    info = probe(path)
    v, a = stream(info, "video"), stream(info, "audio")
    assert v is not None and a is not None and int(v["nb_frames"]) == 480  # 16 s × 30 fps, none lost or doubled
    assert abs(float(v["duration"]) - SECONDS) < 1 / 30 and abs(float(a["duration"]) - SECONDS) < 1 / 30
    assert keyframe_times(path) == [float(t) for t in range(0, 16, 2)]
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-show_entries", "packet=pts",
                          "-of", "json", str(path)], check=True, capture_output=True, timeout=60).stdout
    pts = sorted(int(p["pts"]) for p in json.loads(out)["packets"])
    assert len({b - a for a, b in itertools.pairwise(pts)}) == 1  # no gap, no duplicate
    # Nothing of the parts is left: only the original and the published version.
    keys = stack.storage.list_keys(f"media/{media_id}/")
    assert not [k for k in keys if "/parts-" in k], keys


def test_long_video_by_segments_on_two_workers(fault_stack: FaultStack, long_video: Path, tmp_path: Path) -> None:
    """One stack for both cases (starting one costs more than a video here): a clean run, then a run whose
    part loses its pool process mid-render."""
    _segmented_stack(fault_stack)
    reader = Reader(fault_stack)
    status, body = fault_stack.upload(long_video, RECIPE)
    assert status == 202, body
    media_id = body["id"]
    seen: list[float] = []
    stop = threading.Event()
    watcher = threading.Thread(target=_watch_progress, args=(fault_stack, media_id, seen, stop), daemon=True)
    watcher.start()
    try:
        fault_stack.check_invariants([media_id], timeout=150)
    finally:
        stop.set()
        watcher.join(5)
    assert fault_stack.rows()[media_id]["attempts"] == 1
    parts = _parts_by_worker(fault_stack, media_id)
    assert sorted(p for ps in parts.values() for p in ps) == ["audio", "s000", "s001", "s002", "s003", "stills"]
    assert set(parts) == {"w1", "w2"}, parts  # both workers rendered parts of the one video
    assert seen == sorted(seen) and len(set(seen)) >= 3, seen  # progress moved forward as parts finished
    _check_joined(fault_stack, media_id, tmp_path)

    # A part's pool process killed mid-render (OOM killer, kill -9): its ffmpeg dies with it, Celery rejects the
    # part back to the queue (acks late, reject on worker lost), another process renders it, and the chord
    # calls the join once every part has reported: same attempt, one published version.
    status, body = fault_stack.upload(long_video, RECIPE)
    assert status == 202, body
    second = body["id"]
    # A segment's ffmpeg (parts run with -progress; the stills part, writing poster.png, ends within seconds).
    encoder = _wait_encoding(fault_stack, second, avoid="poster.png")
    pool = _parent(encoder)
    assert pool in {c for w in fault_stack.workers.values() for c in children_of(w.proc.pid)}
    kill(pool)
    fault_stack.check_invariants([second], timeout=150)
    assert fault_stack.rows()[second]["attempts"] == 1  # only the part ran again, not the whole job
    reader.stop()
    assert reader.violations == [] and reader.reads > 0
    _check_joined(fault_stack, second, tmp_path)
