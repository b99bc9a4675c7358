"""Observability through the real stack: the worker's own metrics endpoint (prefork pool processes merged by
the main process), its health and readiness, JSON log lines carrying the media id and attempt, and the API's
broker gauges on Redis."""

from __future__ import annotations

import json
import time
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Stack
from tests.e2e.test_photo_e2e import RECIPE, portrait_photo, upload, wait_terminal

pytestmark = pytest.mark.e2e

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def scrape(url: str) -> Samples:
    r = httpx.get(url, timeout=10)
    assert r.status_code == 200, r.text
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(r.text) for s in family.samples}


def value(samples: Samples, name: str, **labels: str) -> float:
    return samples.get((name, tuple(sorted(labels.items()))), 0.0)


def json_lines(path: Path) -> list[dict[str, object]]:
    out = []
    for line in path.read_text(errors="replace").splitlines():
        if line.startswith("{"):
            try:
                out.append(json.loads(line))
            except json.JSONDecodeError:
                continue
    return out


def test_worker_metrics_count_a_photo_job_and_its_stages(stack: Stack, tmp_path: Path) -> None:
    metrics_url = f"{stack.worker_metrics_url}/metrics"
    before = scrape(metrics_url)
    r = upload(stack, portrait_photo(tmp_path / "p.jpg").read_bytes(), RECIPE)
    assert r.status_code == 202, r.text
    body, _ = wait_terminal(stack, r.json()["id"])
    assert body["status"] == "ready"
    # The job is counted by the pool process after it publishes; the scrape may come a moment before.
    deadline = time.monotonic() + 10
    while True:
        after = scrape(metrics_url)
        if value(after, "media_jobs_total", kind="image", outcome="ready") > \
                value(before, "media_jobs_total", kind="image", outcome="ready") or time.monotonic() > deadline:
            break
        time.sleep(0.2)

    def delta(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert delta("media_jobs_total", kind="image", outcome="ready") == 1
    assert delta("media_job_seconds_count", kind="image", outcome="ready") == 1
    assert delta("media_job_seconds_sum", kind="image", outcome="ready") > 0
    # Every step of the photo pipeline, plus fetching the original and storing the renditions.
    for stage in ("fetch", "decode", "orient", "crop_to_aspect", "apply_filter", "stickers", "render_ladder", "store"):
        assert delta("media_stage_seconds_count", kind="image", stage=stage) == 1, stage
    assert value(after, "media_jobs_in_progress", kind="image") == 0  # summed over live pool processes


def test_worker_health_and_readiness(stack: Stack) -> None:
    assert httpx.get(f"{stack.worker_metrics_url}/healthz", timeout=10).json() == {"status": "ok"}
    r = httpx.get(f"{stack.worker_metrics_url}/readyz", timeout=30)
    assert r.status_code == 200, r.text
    assert r.json() == {"status": "ready", "checks": {"consuming": "ok", "database": "ok", "broker": "ok",
                                                      "storage": "ok"}}
    assert httpx.get(f"{stack.worker_metrics_url}/nope", timeout=10).status_code == 404


def test_job_log_lines_are_json_with_media_id_and_attempt(stack: Stack, tmp_path: Path) -> None:
    r = upload(stack, portrait_photo(tmp_path / "p.jpg").read_bytes(), RECIPE)
    assert r.status_code == 202, r.text
    media_id = r.json()["id"]
    body, _ = wait_terminal(stack, media_id)
    assert body["status"] == "ready"
    deadline = time.monotonic() + 10
    while True:
        mine = [line for line in json_lines(stack.worker.log) if line.get("media_id") == media_id]
        if any("ready in" in str(line["message"]) for line in mine) or time.monotonic() > deadline:
            break
        time.sleep(0.2)
    done = [line for line in mine if "ready in" in str(line["message"])]
    assert len(done) == 1, mine
    line = done[0]
    assert line["attempt"] == 1 and line["kind"] == "image" and line["level"] == "info"
    assert line["logger"] == "media_service.jobs" and str(line["time"]).endswith("+00:00")
    # Celery's own lines go through the same formatter: the log is JSON throughout.
    assert any(str(entry.get("logger", "")).startswith("celery") for entry in json_lines(stack.worker.log))


def test_api_reports_the_redis_queue_lengths(stack: Stack) -> None:
    samples = scrape(f"{stack.base_url}/metrics")
    assert value(samples, "media_queue_stats_up") == 1
    for queue in ("image", "video"):
        assert ("media_broker_queue_length", (("queue", queue),)) in samples
        assert ("media_queue_waiting", (("queue", queue),)) in samples
    assert value(samples, "media_http_requests_total", route="/healthz", method="GET", status="200") >= 1
