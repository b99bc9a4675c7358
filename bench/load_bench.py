#!/usr/bin/env python3
"""Load benchmark (issue 6): the real stack under many clients.

1. Photos: 500 uploads from 50 concurrent clients (each uploads, then polls its media until ready) against
   the API with 2 workers (image queue, concurrency 1 each); throughput and p50/p99 upload→ready.
2. Videos: 20 concurrent uploads of a 100 MB video, streamed from disk, while the API's resident memory is
   sampled every 50 ms: it must stay flat (uploads stream to a spooled temp file and then to storage;
   nothing holds a whole file in memory). No video worker runs: the videos only queue.

The stack is the production one on this machine: PostgreSQL (a fresh database), a private Redis, the
moto S3 server, `media-service api` and `media-service worker` processes.

    .venv/bin/python bench/load_bench.py [--photos 500] [--clients 50] [--videos 20] [--video-mb 100]
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import secrets
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

import httpx  # noqa: E402
import psycopg  # noqa: E402

from media_service.storage import S3Storage  # noqa: E402
from tests.support.faults import RedisServer  # noqa: E402
from tests.support.media import quadrant_image, save_jpeg  # noqa: E402
from tests.support.procs import Proc, media_service, wait_http, wait_log  # noqa: E402
from tests.support.s3server import free_port, run_moto_server  # noqa: E402

OUT = ROOT / "bench" / "out" / "load"
PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
KEY = {"Authorization": "Bearer load-key"}


def rss_mb(pid: int) -> float:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) / 1024
    return 0.0


def tree_rss_mb(pid: int) -> float:
    """The API process and its children (uvicorn runs in the process itself; ffprobe runs as a child)."""
    total = rss_mb(pid)
    try:
        for child in Path(f"/proc/{pid}/task/{pid}/children").read_text().split():
            total += rss_mb(int(child))
    except OSError:
        pass
    return total


def make_photos(folder: Path, count: int) -> list[Path]:
    shapes = [(1200, 1600), (1600, 1200), (1500, 1500), (1080, 1920)]
    return [save_jpeg(quadrant_image(*shapes[i % 4]), folder / f"p{i}.jpg") for i in range(min(count, 8))]


def make_video(path: Path, megabytes: int) -> Path:
    """A real H.264/AAC MP4 of about ``megabytes`` (cached): 1080p noise at a fixed high bitrate."""
    if path.exists() and path.stat().st_size > megabytes * 0.9e6:
        return path
    seconds = 20
    rate = megabytes * 8 * 1_000_000 // seconds
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "testsrc2=s=1920x1080:r=30,noise=alls=40:allf=t", "-f", "lavfi", "-i", "sine=f=440",
                    "-t", str(seconds), "-c:v", "libx264", "-preset", "ultrafast", "-b:v", str(rate),
                    "-maxrate", str(rate), "-bufsize", str(rate), "-c:a", "aac", "-shortest", str(path)],
                   check=True, timeout=600)
    return path


class Sampler:
    """The API process's resident memory (and, apart, with its ffprobe children) every ``interval`` s."""

    def __init__(self, pid: int, interval: float = 0.05) -> None:
        self.pid, self.interval = pid, interval
        self.samples: list[tuple[float, float]] = []
        self.tree: list[float] = []
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)

    def _run(self) -> None:
        started = time.monotonic()
        while not self._stop.is_set():
            self.samples.append((time.monotonic() - started, rss_mb(self.pid)))
            self.tree.append(tree_rss_mb(self.pid))
            time.sleep(self.interval)

    def __enter__(self) -> Sampler:
        self._thread.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self._stop.set()
        self._thread.join()


async def photo_load(base: str, photos: list[Path], total: int, clients: int) -> dict[str, Any]:
    queue: asyncio.Queue[int] = asyncio.Queue()
    for i in range(total):
        queue.put_nowait(i)
    latencies: list[float] = []
    statuses: dict[str, int] = {}
    bodies = [p.read_bytes() for p in photos]

    async def client(http: httpx.AsyncClient) -> None:
        while True:
            try:
                i = queue.get_nowait()
            except asyncio.QueueEmpty:
                return
            started = time.monotonic()
            r = await http.post(f"{base}/v1/media", headers=KEY, files={"file": (f"p{i}.jpg", bodies[i % len(bodies)])},
                                data={"recipe": json.dumps({"aspect": "3:4", "filter": {"id": "starter/warm"}})})
            statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1
            if r.status_code != 202:
                continue
            media_id = r.json()["id"]
            while True:
                await asyncio.sleep(0.25)
                body = (await http.get(f"{base}/v1/media/{media_id}", headers=KEY)).json()
                if body["status"] in ("ready", "failed"):
                    if body["status"] == "ready":
                        latencies.append(time.monotonic() - started)
                    else:
                        statuses["failed"] = statuses.get("failed", 0) + 1
                    break

    limits = httpx.Limits(max_connections=clients, max_keepalive_connections=clients)
    started = time.monotonic()
    async with httpx.AsyncClient(timeout=120, limits=limits) as http:
        await asyncio.gather(*(client(http) for _ in range(clients)))
    elapsed = time.monotonic() - started
    latencies.sort()

    def pct(p: float) -> float:
        return latencies[min(len(latencies) - 1, round(p * (len(latencies) - 1)))] if latencies else float("nan")

    return {"uploads": total, "clients": clients, "statuses": statuses, "ready": len(latencies),
            "elapsed_s": round(elapsed, 2), "throughput_per_s": round(len(latencies) / elapsed, 2),
            "ready_p50_s": round(pct(0.5), 2), "ready_p90_s": round(pct(0.9), 2), "ready_p99_s": round(pct(0.99), 2),
            "ready_max_s": round(latencies[-1], 2) if latencies else None}


async def video_load(base: str, video: Path, count: int) -> dict[str, Any]:
    statuses: dict[str, int] = {}

    async def one(http: httpx.AsyncClient, i: int) -> None:
        with video.open("rb") as f:  # a file object: httpx streams the multipart body from it
            r = await http.post(f"{base}/v1/media", headers=KEY, files={"file": (f"v{i}.mp4", f, "video/mp4")},
                                data={"recipe": json.dumps({"trim": {"start": 0, "end": 10}})})
        statuses[str(r.status_code)] = statuses.get(str(r.status_code), 0) + 1

    started = time.monotonic()
    async with httpx.AsyncClient(timeout=600, limits=httpx.Limits(max_connections=count)) as http:
        await asyncio.gather(*(one(http, i) for i in range(count)))
    return {"uploads": count, "bytes_each": video.stat().st_size, "statuses": statuses,
            "elapsed_s": round(time.monotonic() - started, 2)}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--photos", type=int, default=500)
    parser.add_argument("--clients", type=int, default=50)
    parser.add_argument("--videos", type=int, default=20)
    parser.add_argument("--video-mb", type=int, default=100)
    parser.add_argument("--workers", type=int, default=2)
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    for var, value in (("AWS_ACCESS_KEY_ID", "bench"), ("AWS_SECRET_ACCESS_KEY", "bench"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(var, value)
    video = make_video(OUT / f"video_{args.video_mb}mb.mp4", args.video_mb)
    db_name = f"media_load_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{db_name}"')
    tmp = Path(tempfile.mkdtemp(prefix="load-bench-"))
    redis = RedisServer(tmp / "redis")
    redis.start()
    procs: list[Proc] = []
    try:
        with run_moto_server() as s3:
            bucket = f"load-{secrets.token_hex(4)}"
            S3Storage(bucket, "notes", endpoint_url=s3).ensure_bucket()
            port = free_port()
            env = {**os.environ, "MEDIA_DATA_DIR": str(tmp / "data"),
                   "MEDIA_DATABASE_URL": PG_ADMIN.rsplit("/", 1)[0] + f"/{db_name}", "MEDIA_BROKER_URL": redis.url,
                   "MEDIA_STORAGE_URL": f"s3://{bucket}/notes", "MEDIA_S3_ENDPOINT_URL": s3,
                   "MEDIA_API_KEYS": "load-key=load", "MEDIA_PORT": str(port),
                   "MEDIA_PUBLIC_BASE_URL": f"http://127.0.0.1:{port}", "MEDIA_UPLOAD_RATE_PER_MINUTE": "100000",
                   "MEDIA_RATE_LIMIT_PER_MINUTE": "1000000", "MEDIA_MAX_VIDEO_BACKLOG": "10000",
                   "MEDIA_LIMITS__MAX_UPLOAD_BYTES": str(args.video_mb * 1_300_000),
                   "TMPDIR": str(tmp)}
            api = Proc("api", media_service("api"), env, tmp / "api.log")
            procs.append(api)
            wait_http(f"http://127.0.0.1:{port}/healthz", api)
            for n in range(args.workers):
                worker = Proc(f"w{n}", media_service("worker", "--queues", "image", "--concurrency", "1",
                                                     "--hostname", f"w{n}@%h"), env, tmp / f"w{n}.log")
                procs.append(worker)
                wait_log(worker, "ready.", timeout=120)
            base = f"http://127.0.0.1:{port}"
            photos = make_photos(tmp, args.photos)
            print(f"photos: {args.photos} uploads, {args.clients} clients, {args.workers} workers …", flush=True)
            photo_result = asyncio.run(photo_load(base, photos, args.photos, args.clients))
            print(json.dumps(photo_result, indent=1), flush=True)
            print(f"videos: {args.videos} × {video.stat().st_size / 1e6:.0f} MB at once …", flush=True)
            idle = rss_mb(api.proc.pid)
            with Sampler(api.proc.pid) as sampler:
                video_result = asyncio.run(video_load(base, video, args.videos))
            peak = max(mb for _, mb in sampler.samples)
            video_result |= {"api_rss_before_mb": round(idle, 1), "api_rss_peak_mb": round(peak, 1),
                             "api_rss_growth_mb": round(peak - idle, 1),
                             "api_with_ffprobe_children_peak_mb": round(max(sampler.tree), 1),
                             "bytes_in_flight_mb": round(args.videos * video.stat().st_size / 1e6),
                             "samples": len(sampler.samples)}
            print(json.dumps(video_result, indent=1), flush=True)
            result = {"date": time.strftime("%Y-%m-%d"), "photos": photo_result, "videos": video_result,
                      "load_average": os.getloadavg()}
            (OUT / "load_bench.json").write_text(json.dumps(result, indent=1))
    finally:
        for proc in procs:
            proc.stop()
        redis.stop()
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{db_name}" WITH (FORCE)')
    return 0


if __name__ == "__main__":
    sys.exit(main())
