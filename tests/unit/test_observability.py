"""Logs and metrics without servers: the JSON formatter and its context, a job run counted and its lines
tagged, the tool runner's failures counted, and prometheus_client's multiprocess mode with forked processes
(one killed mid-job), as Celery's prefork pool uses it."""

from __future__ import annotations

import io
import json
import logging
import os
import subprocess
import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest
from prometheus_client import REGISTRY

from media_service import logs
from media_service.config import Settings
from media_service.db import Database, MediaRecord, MediaRepo, Status
from media_service.errors import ToolFailed, ToolTimeout
from media_service.ffmpeg import run_tool
from media_service.jobs import JobContext, original_key, process_media
from media_service.limits import DEFAULT_LIMITS
from media_service.packs import load_registry
from media_service.storage import LocalStorage
from tests.support.media import quadrant_image, save_jpeg
from tests.support.packs import write_look_pack, write_sticker_pack

REPO = Path(__file__).resolve().parents[2]


def metric(name: str, **labels: str) -> float:
    return REGISTRY.get_sample_value(name, labels) or 0.0


@pytest.fixture()
def captured() -> Iterator[io.StringIO]:
    """Every line logged under media_service, formatted as the services format it (JSON)."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(logs.JsonFormatter())
    handler.addFilter(logs.ContextFilter())
    logger = logging.getLogger("media_service")
    old = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    try:
        yield stream
    finally:
        logger.removeHandler(handler)
        logger.setLevel(old)


def lines(stream: io.StringIO) -> list[dict[str, object]]:
    return [json.loads(line) for line in stream.getvalue().splitlines()]


def test_json_lines_carry_the_context_and_the_exception(captured: io.StringIO) -> None:
    log = logging.getLogger("media_service.test")
    log.info("outside")
    with logs.job_context("m1", attempt=2, kind="video"):
        log.info("inside %s", "a job")
        with logs.request_context("r-1"):
            try:
                raise ValueError("boom")
            except ValueError:
                log.exception("it broke")
    log.warning("after")
    out = lines(captured)
    assert [o["message"] for o in out] == ["outside", "inside a job", "it broke", "after"]
    assert "media_id" not in out[0] and "media_id" not in out[3]  # the context ends with its block
    assert {k: out[1][k] for k in ("media_id", "attempt", "kind")} == {"media_id": "m1", "attempt": 2, "kind": "video"}
    assert out[2]["request_id"] == "r-1" and out[2]["media_id"] == "m1" and out[2]["level"] == "error"
    assert "ValueError: boom" in str(out[2]["exception"]) and "\n" not in captured.getvalue().splitlines()[2]
    assert set(out[0]) == {"time", "level", "logger", "message"} and out[0]["logger"] == "media_service.test"


def test_text_format_appends_the_context() -> None:
    record = logging.LogRecord("media_service.x", logging.INFO, __file__, 1, "hello", (), None)
    with logs.job_context("m7", attempt=1):
        text = logs.make_formatter("text").format(record)
    assert text.endswith("INFO media_service.x: hello [media_id=m7 attempt=1]")
    with pytest.raises(ValueError):
        logs.make_formatter("xml")


def test_log_settings_are_validated(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("MEDIA_LOG_FORMAT", "TEXT")
    monkeypatch.setenv("MEDIA_LOG_LEVEL", "warning")
    monkeypatch.setenv("MEDIA_WORKER_METRICS_PORT", "9108")
    settings = Settings()
    assert (settings.log_format, settings.log_level, settings.worker_metrics_port) == ("text", "WARNING", 9108)
    assert Settings.model_fields["log_format"].default == "json"
    monkeypatch.setenv("MEDIA_LOG_FORMAT", "xml")
    with pytest.raises(ValueError):
        Settings()


def test_runner_counts_failures_and_timeouts_and_logs_them_in_the_job(captured: io.StringIO) -> None:
    failed = metric("media_tool_errors_total", tool="false", code="tool_failed")
    timed_out = metric("media_tool_errors_total", tool="sleep", code="tool_timeout")
    with logs.job_context("m9", attempt=3, kind="video"):
        with pytest.raises(ToolFailed):
            run_tool(["false"], timeout=10)
        with pytest.raises(ToolTimeout):
            run_tool(["sleep", "30"], timeout=0.3)
        run_tool(["true"], timeout=10)  # success is not an error
    assert metric("media_tool_errors_total", tool="false", code="tool_failed") == failed + 1
    assert metric("media_tool_errors_total", tool="sleep", code="tool_timeout") == timed_out + 1
    out = [o for o in lines(captured) if o["logger"] == "media_service.ffmpeg"]
    assert len(out) == 2 and all(o["media_id"] == "m9" and o["attempt"] == 3 for o in out)


@pytest.fixture()
def ctx(tmp_path: Path) -> JobContext:
    db = Database(f"sqlite:///{tmp_path / 'media.db'}")
    db.create_all()
    storage = LocalStorage(tmp_path / "storage", public_base_url="http://x", signing_secret=b"s")
    registry = load_registry([write_look_pack(tmp_path / "f")], [write_sticker_pack(tmp_path / "s")])
    return JobContext(MediaRepo(db), storage, registry, DEFAULT_LIMITS, max_attempts=3, tmp_root=tmp_path)


def add(ctx: JobContext, data: bytes, media_id: str) -> None:
    stored = ctx.storage.put_stream(original_key(media_id), io.BytesIO(data), "image/jpeg")
    ctx.repo.create(MediaRecord(id=media_id, owner="o", kind="image", status=Status.QUEUED.value, progress=0.0,
                                recipe={"filter": {"id": "tlooks/warm"}}, source={}, renditions=[],
                                original_key=stored.key, original_bytes=stored.size, original_format="jpeg",
                                attempts=0))


def test_a_job_is_counted_with_its_stages_and_its_lines_tagged(ctx: JobContext, tmp_path: Path,
                                                               captured: io.StringIO) -> None:
    photo = save_jpeg(quadrant_image(640, 480), tmp_path / "p.jpg").read_bytes()
    add(ctx, photo, "good")
    add(ctx, photo[:300], "bad")
    ready = metric("media_jobs_total", kind="image", outcome="ready")
    failed = metric("media_jobs_total", kind="image", outcome="failed")
    corrupt = metric("media_job_failures_total", kind="image", code="corrupt_media")
    skipped = metric("media_jobs_total", kind="unknown", outcome="skipped")
    stage = metric("media_stage_seconds_count", kind="image", stage="render_ladder")
    fetch = metric("media_stage_seconds_count", kind="image", stage="fetch")
    seconds = metric("media_job_seconds_count", kind="image", outcome="ready")

    assert process_media(ctx, "good").status == "ready"
    assert process_media(ctx, "bad").status == "failed"
    assert process_media(ctx, "never-existed").status == "skipped"

    assert metric("media_jobs_total", kind="image", outcome="ready") == ready + 1
    assert metric("media_jobs_total", kind="image", outcome="failed") == failed + 1
    assert metric("media_job_failures_total", kind="image", code="corrupt_media") == corrupt + 1
    assert metric("media_jobs_total", kind="unknown", outcome="skipped") == skipped + 1
    assert metric("media_stage_seconds_count", kind="image", stage="render_ladder") == stage + 1
    assert metric("media_stage_seconds_count", kind="image", stage="fetch") == fetch + 2
    assert metric("media_job_seconds_count", kind="image", outcome="ready") == seconds + 1
    assert metric("media_jobs_in_progress", kind="image") == 0
    out = lines(captured)
    good = [o for o in out if o.get("media_id") == "good"]
    bad = [o for o in out if o.get("media_id") == "bad"]
    assert any("ready in" in str(o["message"]) for o in good)
    assert all(o["attempt"] == 1 and o["kind"] == "image" for o in good + bad)
    assert any(o["level"] == "warning" and "corrupt_media" in str(o["message"]) for o in bad)


MULTIPROCESS_SCRIPT = """
import json, os, signal, sys, time
from media_service import multiproc
folder = multiproc.prepare_dir()              # before prometheus_client is imported, as `media-service worker` does
from media_service import metrics              # noqa: E402

def child(kill_me: bool) -> None:
    metrics.JOBS_IN_PROGRESS.labels(kind="video").inc()
    if kill_me:
        os.kill(os.getpid(), signal.SIGKILL)  # dies mid-job: its in-progress count must not linger
    metrics.job_finished("image", "ready", 0.5, None)
    metrics.stage_seconds("image", {"render_ladder": 0.2})
    metrics.JOBS_IN_PROGRESS.labels(kind="video").dec()
    os._exit(0)

pids = []
for kill_me in (False, False, True):
    pid = os.fork()
    if pid == 0:
        child(kill_me)
    pids.append(pid)
for pid in pids:
    os.waitpid(pid, 0)
before = metrics.render().decode()
reaped = multiproc.reap_dead()
after = metrics.render().decode()
multiproc.remove_dir(folder)
print(json.dumps({"folder": str(folder), "before": before, "after": after, "reaped": reaped, "pids": pids,
                  "gone": not folder.exists()}))
"""


def test_multiprocess_mode_merges_forked_processes_and_forgets_the_dead(tmp_path: Path) -> None:
    env = {**os.environ, "PROMETHEUS_MULTIPROC_DIR": str(tmp_path / "base")}
    done = subprocess.run([sys.executable, "-c", textwrap.dedent(MULTIPROCESS_SCRIPT)], env=env, cwd=REPO,
                          capture_output=True, text=True, timeout=60, check=True)
    out = json.loads(done.stdout.strip().splitlines()[-1])
    # A fresh directory under the operator's one, removed when the worker stops.
    assert Path(out["folder"]).parent == tmp_path / "base" and out["gone"]
    assert 'media_jobs_total{kind="image",outcome="ready"} 2.0' in out["before"]
    assert 'media_stage_seconds_count{kind="image",stage="render_ladder"} 2.0' in out["before"]
    assert 'media_jobs_in_progress{kind="video"} 1.0' in out["before"]  # the killed one still counted…
    assert out["reaped"] == sorted(out["pids"])
    assert 'media_jobs_in_progress{kind="video"} 0.0' in out["after"] or \
        'media_jobs_in_progress{kind="video"}' not in out["after"]  # …until its pid is reaped
    assert 'media_jobs_total{kind="image",outcome="ready"} 2.0' in out["after"]  # totals stay
