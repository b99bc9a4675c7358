"""Latency of one long video as workers are added: one pass against segments on 1 and 2 workers.

Real worker processes (``media-service worker``, concurrency 1 each) on Redis (chords need its result
backend), SQLite and local storage, each pinned with ``taskset`` to its own core, so that "two workers"
means two cores and nothing else. The same 60 s 1080×1920 phone-like clip and recipe as bench/video_bench.py
(look, two stickers, ducked music, three rungs). Latency is from queueing the job to the record being
``ready`` (the API adds only its upload in front). Each configuration runs on a fresh database, storage and
Redis database; configurations alternate when repeated (the machine drifts).

    .venv/bin/python bench/segments_bench.py                  # ≈8 min on 2 cores
    .venv/bin/python bench/segments_bench.py --repeat 2 --seconds 30

Configurations: one pass with one core, one pass with both cores (one worker allowed on cores 0-1: ffmpeg's
threads use both), segments with one worker on one core, segments with two workers on a core each. This
machine has 2 cores, so 2 workers is the honest maximum; more workers would only share them.
"""

from __future__ import annotations

import argparse
import contextlib
import json
import os
import re
import secrets
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from video_bench import DEFAULT_NOISE, make_source, resolve_packs  # noqa: E402

from media_service.config import Settings  # noqa: E402
from media_service.db import Database, MediaRecord, MediaRepo, Status  # noqa: E402
from media_service.jobs import original_key  # noqa: E402
from media_service.queue import JobQueue, make_celery  # noqa: E402
from media_service.storage import LocalStorage  # noqa: E402

OUT = ROOT / "bench" / "out" / "segments"
REDIS = os.environ.get("BENCH_REDIS_URL", "redis://127.0.0.1:6379/13")
CONFIGS: dict[str, dict[str, Any]] = {
    "one pass, 1 core": {"workers": ["0"], "segment": False},
    "one pass, 2 cores": {"workers": ["0,1"], "segment": False},
    "segments, 1 worker (1 core)": {"workers": ["0"], "segment": True},
    "segments, 2 workers (a core each)": {"workers": ["0", "1"], "segment": True},
}


def _cores() -> int:
    return len(os.sched_getaffinity(0))


def run_one(name: str, config: dict[str, Any], source: Path, recipe: dict[str, Any], packs: dict[str, Any],
            segment_seconds: float) -> dict[str, Any]:
    import redis

    work = OUT / re.sub(r"[^a-z0-9]+", "-", name.lower()).strip("-")
    shutil.rmtree(work, ignore_errors=True)
    work.mkdir(parents=True)
    redis.Redis.from_url(REDIS).flushdb()
    env = {**os.environ, "MEDIA_DATA_DIR": str(work / "data"), "MEDIA_DATABASE_URL": f"sqlite:///{work}/media.db",
           "MEDIA_BROKER_URL": REDIS, "MEDIA_STORAGE_URL": f"file://{work}/storage",
           "MEDIA_FILTERS_DIRS": ":".join(packs["filter_roots"]),
           "MEDIA_STICKERS_DIRS": ":".join(packs["sticker_roots"]), "MEDIA_MUSIC_DIRS": ":".join(packs["music_roots"]),
           "MEDIA_LOG_FORMAT": "text", "MEDIA_RECONCILE_SECONDS": "0",
           "MEDIA_SEGMENT_MIN_SECONDS": "1" if config["segment"] else "0",
           "MEDIA_SEGMENT_SECONDS": f"{segment_seconds:g}", "TMPDIR": str(work / "tmp")}
    (work / "tmp").mkdir()
    settings = Settings(data_dir=work / "data", database_url=env["MEDIA_DATABASE_URL"], broker_url=REDIS,
                        storage_url=env["MEDIA_STORAGE_URL"])
    db = Database(settings.database_url)
    db.create_all()
    repo = MediaRepo(db)
    storage = LocalStorage(work / "storage", public_base_url="http://x", signing_secret=b"bench")
    media_id = secrets.token_hex(16)
    with source.open("rb") as f:
        stored = storage.put_stream(original_key(media_id), f, "video/mp4")
    repo.create(MediaRecord(id=media_id, owner="bench", kind="video", status=Status.QUEUED.value, progress=0.0,
                            recipe=recipe, source={}, renditions=[], original_key=stored.key,
                            original_bytes=stored.size, original_format="mp4", attempts=0))
    procs, logs = [], []
    try:
        for i, cores in enumerate(config["workers"]):
            log = work / f"worker{i}.log"
            logs.append(log)
            argv = ["taskset", "-c", cores, str(ROOT / ".venv" / "bin" / "media-service"), "worker", "--queues",
                    "video", "--concurrency", "1", "--hostname", f"w{i}@%h"]
            procs.append(subprocess.Popen(argv, env=env, stdout=log.open("wb"), stderr=subprocess.STDOUT,
                                          start_new_session=True))
        deadline = time.monotonic() + 120
        while not all("ready." in log.read_text(errors="replace") for log in logs):
            if time.monotonic() > deadline:
                raise SystemExit(f"{name}: workers did not start")
            time.sleep(0.2)
        queued = time.monotonic()
        JobQueue(make_celery(settings, "bench")).enqueue(media_id, "video")
        progress: list[tuple[float, float]] = []
        while True:
            record = repo.get(media_id)
            assert record is not None
            if record.status == Status.PROCESSING.value and (not progress or progress[-1][1] != record.progress):
                progress.append((round(time.monotonic() - queued, 1), record.progress))
            if record.status in (Status.READY.value, Status.FAILED.value):
                break
            time.sleep(0.1)
        latency = time.monotonic() - queued
        time.sleep(2)  # the join's last log lines reach the file before the workers are stopped
    finally:
        for p in procs:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(p.pid, 15)
        for p in procs:
            try:
                p.wait(30)
            except subprocess.TimeoutExpired:
                os.killpg(p.pid, 9)
    result: dict[str, Any] = {"config": name, "latency_s": round(latency, 1), "status": record.status,
                              "attempts": record.attempts, "progress": progress, "error": record.error_code}
    text = "\n".join(log.read_text(errors="replace") for log in logs)
    result |= _stages(text, config["segment"])
    top = next((r for r in record.renditions if r["name"] == "1080p.mp4"), None)
    if top is not None:
        local = work / "1080p.mp4"
        storage.get_to_file(top["key"], local)
        probe = json.loads(subprocess.run(["ffprobe", "-v", "error", "-count_packets", "-show_entries",
                                           "stream=codec_type,nb_read_packets,duration", "-of", "json", str(local)],
                                          capture_output=True, check=True).stdout)
        result["1080p"] = {s["codec_type"]: {"packets": int(s["nb_read_packets"]),
                                             "duration": float(s["duration"])} for s in probe["streams"]}
        result["1080p_bytes"] = top["bytes"]
    shutil.rmtree(work / "storage", ignore_errors=True)
    return result


def _stages(text: str, segmented: bool) -> dict[str, Any]:
    """Per-stage seconds from the workers' log lines."""
    if not segmented:
        m = re.search(r"ready in ([0-9.]+)s \(attempt \d+, (\{.*?\})\)", text)
        return {"stages": json.loads(m.group(2).replace("'", '"')) if m else {}}
    parts = {m.group(1): {"seconds": float(m.group(2)), **json.loads(m.group(3).replace("'", '"'))}
             for m in re.finditer(r"part (\S+) of split \S+ done in ([0-9.]+)s (\{.*?\})", text)}
    join = re.search(r"ready by split \S+ \((\d+) parts\) in ([0-9.]+)s of join", text)
    return {"parts": parts, "join_s": float(join.group(2)) if join else None,
            "parts_total_s": round(sum(p["seconds"] for p in parts.values()), 1)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=60)
    parser.add_argument("--segment-seconds", type=float, default=10.0)
    parser.add_argument("--repeat", type=int, default=1)
    parser.add_argument("--only", action="append", help="run only configurations containing this text")
    args = parser.parse_args()
    if _cores() < 2:
        raise SystemExit("needs 2 cores")
    load = os.getloadavg()[0]
    source = Path(make_source(args.seconds, DEFAULT_NOISE)["path"])
    packs = resolve_packs()
    recipe = packs["recipe"]
    OUT.mkdir(parents=True, exist_ok=True)
    names = [n for n in CONFIGS if not args.only or any(o in n for o in args.only)]
    results = []
    for r in range(args.repeat):
        for name in names if r % 2 == 0 else list(reversed(names)):
            res = run_one(name, CONFIGS[name], source, recipe, packs, args.segment_seconds)
            res["load_before"] = round(os.getloadavg()[0], 2)
            results.append(res)
            print(f"{name:36s} {res['latency_s']:7.1f} s  {res['status']}  "
                  f"{json.dumps({k: res[k] for k in ('join_s', 'parts_total_s') if k in res})}", flush=True)
    summary: dict[str, Any] = {}
    for name in names:
        runs = [r["latency_s"] for r in results if r["config"] == name]
        summary[name] = {"latency_s": sorted(runs)[len(runs) // 2], "runs": runs}
    report = {"seconds": args.seconds, "segment_seconds": args.segment_seconds, "cores": _cores(),
              "load_at_start": round(load, 2), "recipe": recipe, "summary": summary, "runs": results}
    (OUT.parent / "segments_bench.json").write_text(json.dumps(report, indent=1))
    print("\nmedian latency, queued → ready:")
    base = summary.get("one pass, 1 core", {}).get("latency_s")
    for name, s in summary.items():
        rel = f"  ({base / s['latency_s']:.2f}× one pass on 1 core)" if base else ""
        print(f"  {name:36s} {s['latency_s']:7.1f} s{rel}")
    print(f"(load average at start {load:.2f}; results in {OUT.parent / 'segments_bench.json'})")


if __name__ == "__main__":
    main()
