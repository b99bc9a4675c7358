"""A stack per fault test: the real API and Celery workers, with a private Redis that can be restarted, the
database behind a TCP proxy that can drop it, and the S3 server behind an HTTP proxy that can fail or stall.
Invariants are checked from the database and the object store directly, never through the faulty paths."""

from __future__ import annotations

import hashlib
import json
import os
import re
import secrets
import threading
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import psycopg
import pytest

from media_service.storage import S3Storage
from tests.support.faults import HttpFaults, RedisServer, TcpProxy, http_fault_proxy, wait_until
from tests.support.media import quadrant_image, save_jpeg
from tests.support.procs import Proc, media_service, wait_http, wait_log
from tests.support.s3server import free_port, run_moto_server
from tests.support.video import make_video

PG_ADMIN = os.environ.get("TEST_PG_ADMIN_URL", "postgresql://postgres@127.0.0.1:5432/postgres")
MAX_ATTEMPTS = 3
VISIBILITY_TIMEOUT = 15  # seconds: how long Redis keeps a dead worker's job before another may take it
KEY = {"Authorization": "Bearer fault-key"}
OTHER_KEY = {"Authorization": "Bearer other-key"}
TERMINAL = ("ready", "failed")
JOB_FOLDER = re.compile(r"^media-[0-9a-f]{32}-")

pytestmark = pytest.mark.faults


@pytest.fixture(scope="session")
def s3_endpoint() -> Iterator[str]:
    with run_moto_server() as endpoint:
        yield endpoint


@pytest.fixture(scope="session")
def media_files(tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    root = tmp_path_factory.mktemp("fault-media")
    files = {f"photo{i}": save_jpeg(quadrant_image(900 + 40 * i, 700), root / f"p{i}.jpg") for i in range(4)}
    # Long enough (540p, 6 s, two rungs) that a test can catch ffmpeg at work.
    files["video"] = make_video(root / "v.mp4", width=540, height=960, seconds=6.0)
    files["short"] = make_video(root / "s.mp4", width=360, height=640, seconds=2.0)
    return files


@dataclass
class Reader:
    """Reads every record while the fault happens, as clients would, and checks each ``ready`` one's
    objects exist: nobody may ever see a partial rendition set."""

    stack: FaultStack
    violations: list[str] = field(default_factory=list)
    reads: int = 0
    _stop: threading.Event = field(default_factory=threading.Event)

    def __post_init__(self) -> None:
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def _loop(self) -> None:
        while not self._stop.wait(0.3):
            try:
                rows = self.stack.rows()
            except psycopg.Error:
                continue
            for media_id, row in rows.items():
                if row["status"] != "ready":
                    continue
                self.reads += 1
                for problem in self.stack.missing_objects(row):
                    self.violations.append(f"{media_id}: {problem}")

    def stop(self) -> None:
        self._stop.set()
        self._thread.join(timeout=10)


@dataclass
class FaultStack:
    root: Path
    s3_endpoint: str
    s3_proxy: str
    s3_faults: HttpFaults
    redis: RedisServer
    pg: TcpProxy
    db_name: str
    env: dict[str, str] = field(default_factory=dict)
    api: Proc | None = None
    workers: dict[str, Proc] = field(default_factory=dict)
    accepted: list[str] = field(default_factory=list)

    def __post_init__(self) -> None:
        self.port = free_port()
        self.bucket = f"faults-{secrets.token_hex(4)}"
        self.tmp = self.root / "worker-tmp"
        self.tmp.mkdir()
        self.logs = self.root / "logs"
        self.logs.mkdir()
        self.storage = S3Storage(self.bucket, "notes", endpoint_url=self.s3_endpoint)  # direct, for checks
        self.storage.ensure_bucket()
        self.env = {
            **os.environ,
            "AWS_ACCESS_KEY_ID": "test", "AWS_SECRET_ACCESS_KEY": "test", "AWS_DEFAULT_REGION": "us-east-1",
            "MEDIA_DATA_DIR": str(self.root / "data"),
            "MEDIA_DATABASE_URL": self.db_url(self.pg.port),
            "MEDIA_BROKER_URL": self.redis.url,
            "MEDIA_STORAGE_URL": f"s3://{self.bucket}/notes",
            "MEDIA_S3_ENDPOINT_URL": self.s3_proxy,
            "MEDIA_API_KEYS": "fault-key=faults,other-key=others",
            "MEDIA_PORT": str(self.port),
            "MEDIA_PUBLIC_BASE_URL": f"http://127.0.0.1:{self.port}",
            "MEDIA_MAX_ATTEMPTS": str(MAX_ATTEMPTS),
            "MEDIA_VISIBILITY_TIMEOUT": str(VISIBILITY_TIMEOUT),
            "MEDIA_UPLOAD_RATE_PER_MINUTE": "5000",
            "MEDIA_RATE_LIMIT_PER_MINUTE": "50000",
            "MEDIA_RECONCILE_SECONDS": "2",
            # A killed job's record is taken over once it has not beaten for this long (a live one never is).
            "MEDIA_PROCESSING_LEASE_SECONDS": "6",
            # Long enough that a backlog in these tests is not taken for lost messages (the reconciler's own test
            # lowers it).
            "MEDIA_STUCK_QUEUED_SECONDS": "600",
            "MEDIA_WEBHOOK_ALLOW_PRIVATE": "true",  # the test's receiver is on loopback
            "MEDIA_WEBHOOK_BACKOFF": "0.5,1,1,2",
            "TMPDIR": str(self.tmp),
        }

    @property
    def base_url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def db_url(self, port: int) -> str:
        return f"postgresql://postgres@127.0.0.1:{port}/{self.db_name}"

    # --- processes ------------------------------------------------------------------------------

    def start_api(self) -> Proc:
        self.api = Proc("api", media_service("api"), self.env, self.logs / "api.log")
        wait_http(f"{self.base_url}/healthz", self.api)
        return self.api

    def start_worker(self, name: str, queues: str = "image,video", concurrency: int = 2) -> Proc:
        argv = media_service("worker", "--queues", queues, "--concurrency", str(concurrency),
                             "--hostname", f"{name}@%h")
        proc = Proc(name, argv, self.env, self.logs / f"{name}-{uuid.uuid4().hex[:6]}.log")
        self.workers[name] = proc
        wait_log(proc, "ready.", timeout=90)
        return proc

    def stop_all(self) -> None:
        for proc in [*self.workers.values(), *([self.api] if self.api else [])]:
            proc.stop()

    # --- clients ---------------------------------------------------------------------------------

    def upload(self, path: Path, recipe: dict[str, Any] | None = None, key: dict[str, str] = KEY
               ) -> tuple[int, dict[str, Any]]:
        boundary = uuid.uuid4().hex
        parts = [f"--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"{path.name}\"\r\n"
                 "Content-Type: application/octet-stream\r\n\r\n".encode() + path.read_bytes() + b"\r\n"]
        if recipe is not None:
            parts.append(f"--{boundary}\r\nContent-Disposition: form-data; name=\"recipe\"\r\n\r\n"
                         f"{json.dumps(recipe)}\r\n".encode())
        body = b"".join(parts) + f"--{boundary}--\r\n".encode()
        req = urllib.request.Request(f"{self.base_url}/v1/media", data=body, method="POST", headers={
            **key, "Content-Type": f"multipart/form-data; boundary={boundary}"})
        try:
            with urllib.request.urlopen(req, timeout=60) as resp:
                data = json.loads(resp.read())
                self.accepted.append(data["id"])
                return resp.status, data
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def post_json(self, path: str, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        req = urllib.request.Request(f"{self.base_url}{path}", data=json.dumps(data).encode(), method="POST",
                                     headers={**KEY, "Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def get(self, path: str) -> tuple[int, dict[str, Any]]:
        try:
            with urllib.request.urlopen(urllib.request.Request(f"{self.base_url}{path}", headers=KEY),
                                        timeout=30) as resp:
                return resp.status, json.loads(resp.read())
        except urllib.error.HTTPError as err:
            return err.code, json.loads(err.read() or b"{}")

    def batch(self, files: dict[str, Path], photos: int = 4, videos: int = 1, video: str = "short") -> list[str]:
        """Photos and videos (``video``: "short", 2 s at 360p, or "video", 6 s at 540p with time to catch
        ffmpeg at work)."""
        ids = []
        for i in range(photos):
            status, body = self.upload(files[f"photo{i % 4}"], {"aspect": "1:1"})
            assert status == 202, body
            ids.append(body["id"])
        for _ in range(videos):
            status, body = self.upload(files[video], {"aspect": "9:16"})
            assert status == 202, body
            ids.append(body["id"])
        return ids

    # --- ledger and checks, straight from the database and the object store -----------------------

    def rows(self) -> dict[str, dict[str, Any]]:
        with psycopg.connect(self.db_url(5432), connect_timeout=5) as conn:
            cur = conn.execute("SELECT id, kind, status, attempts, version, renditions, error_code, updated_at "
                               "FROM media")
            return {r[0]: {"kind": r[1], "status": r[2], "attempts": r[3], "version": r[4], "renditions": r[5],
                           "error_code": r[6], "updated_at": r[7]} for r in cur.fetchall()}

    def wait_terminal(self, ids: list[str], timeout: float) -> dict[str, dict[str, Any]]:
        def done() -> bool:
            rows = self.rows()
            return all(rows.get(i, {}).get("status") in TERMINAL for i in ids)

        try:
            wait_until(done, timeout, 0.5, "every media terminal")
        except TimeoutError:
            rows = self.rows()
            stuck = {i: rows.get(i) for i in ids if rows.get(i, {}).get("status") not in TERMINAL}
            logs = "\n".join(f"--- {p.name} ---\n{p.tail()}" for p in self.workers.values())
            raise AssertionError(f"not terminal: {stuck}\n{logs}") from None
        return self.rows()

    def missing_objects(self, row: dict[str, Any]) -> list[str]:
        problems = []
        for r in row["renditions"] or []:
            key = r.get("key")
            if not key:
                continue
            stat = self.storage.stat(key)
            if stat is None:
                problems.append(f"{key} missing")
            elif r.get("name") != "hls" and r.get("bytes") is not None and stat.size != r["bytes"]:
                problems.append(f"{key}: {stat.size} bytes stored, {r['bytes']} recorded")
        return problems

    def check_invariants(self, ids: list[str], timeout: float = 180, *, ready: bool = True) -> dict[str, Any]:
        """Every accepted media terminal within ``timeout`` (ready unless told otherwise), its attempts
        under the cap, each ready one's objects present with their recorded size and checksum, exactly one
        rendition version stored, no ffmpeg left and (after the next job) no work folder left."""
        rows = self.wait_terminal(ids, timeout)
        for media_id in ids:
            row = rows[media_id]
            assert row["attempts"] <= MAX_ATTEMPTS, (media_id, row)
            if ready:
                assert row["status"] == "ready", (media_id, row)
            if row["status"] != "ready":
                continue
            assert self.missing_objects(row) == [], (media_id, self.missing_objects(row))
            for r in row["renditions"]:
                if r.get("sha256"):
                    local = self.root / "check.bin"
                    self.storage.get_to_file(r["key"], local)
                    assert hashlib.sha256(local.read_bytes()).hexdigest() == r["sha256"], r["key"]
            versions = {k.split("/")[2] for k in self.storage.list_keys(f"media/{media_id}/") if k.count("/") >= 3}
            assert versions == {row["version"]}, (media_id, versions, row["version"])
        self.check_no_leftovers()
        return rows

    def check_no_leftovers(self) -> None:
        from tests.support.faults import processes_named

        wait_until(lambda: not [p for p in processes_named("ffmpeg", "") if _cwd_under(p, self.tmp)], 30, 0.5,
                   "no ffmpeg left in the work folders")
        # The next job sweeps the folders of killed job processes; give it one.
        status, body = self.upload(_sweep_photo(self.root))
        assert status == 202, body
        self.wait_terminal([body["id"]], 60)
        def job_folders() -> list[str]:  # a job's work folder (the workers' own process folders live on)
            return sorted(p.name for p in self.tmp.iterdir() if JOB_FOLDER.match(p.name))

        try:
            wait_until(lambda: not job_folders(), 20, 0.5, "no work folder left")
        except TimeoutError:
            raise AssertionError(f"left in {self.tmp}: {job_folders()}") from None


def _cwd_under(pid: int, root: Path) -> bool:
    try:
        return Path(os.readlink(f"/proc/{pid}/cwd")).is_relative_to(root)
    except OSError:
        return False


def _sweep_photo(root: Path) -> Path:
    path = root / "sweep.jpg"
    if not path.exists():
        save_jpeg(quadrant_image(320, 240), path)
    return path


@pytest.fixture()
def fault_stack(s3_endpoint: str, tmp_path: Path) -> Iterator[FaultStack]:
    for var, value in (("AWS_ACCESS_KEY_ID", "test"), ("AWS_SECRET_ACCESS_KEY", "test"),
                       ("AWS_DEFAULT_REGION", "us-east-1")):
        os.environ.setdefault(var, value)
    name = f"media_faults_{secrets.token_hex(4)}"
    with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    redis = RedisServer(tmp_path / "redis")
    redis.start()
    pg = TcpProxy("127.0.0.1", 5432).start()
    stack: FaultStack | None = None
    try:
        with http_fault_proxy(s3_endpoint) as (proxy, faults):
            stack = FaultStack(tmp_path, s3_endpoint, proxy, faults, redis, pg, name)
            yield stack
            stack.stop_all()
    finally:
        if stack is not None:
            stack.stop_all()
        pg.close()
        redis.stop()
        time.sleep(0.2)
        with psycopg.connect(PG_ADMIN, autocommit=True) as conn:
            conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
