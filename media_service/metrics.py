"""Prometheus metrics: their names (stable, documented in the README), and how a process exposes them.

A leaf module: it imports no settings, storage or database, so the tool runner and the job code can count
into it. Sources that need the database or the broker (queue depth and age) are handed in as callables
(see ``QueueStatsCollector``; media_service/instrument.py builds them).

Celery's prefork workers count in their pool processes and are scraped in the main process: that needs
prometheus_client's multiprocess mode, chosen by ``PROMETHEUS_MULTIPROC_DIR`` being set **before**
prometheus_client is first imported (media_service/multiproc.py and ``media-service worker`` do that).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client import multiprocess as _multiprocess
from prometheus_client.core import GaugeMetricFamily
from prometheus_client.metrics_core import Metric
from prometheus_client.registry import REGISTRY, Collector

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"

OUTCOMES = ("ready", "failed", "retry", "skipped")
KINDS = ("image", "video")

# Seconds: photos take tens of milliseconds per step to a few seconds; videos minutes.
STAGE_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 900.0)
JOB_BUCKETS = (0.1, 0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 30.0, 60.0, 120.0, 300.0, 600.0, 900.0)
HTTP_BUCKETS = (0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0)

# --- jobs (workers) ---
JOBS = Counter("media_jobs_total", "Jobs finished by a worker, by kind and outcome (ready, failed, retry, skipped).",
               ["kind", "outcome"])
JOB_FAILURES = Counter("media_job_failures_total",
                       "Jobs that ended failed or were handed back for a retry, by kind and error code.",
                       ["kind", "code"])
JOBS_IN_PROGRESS = Gauge("media_jobs_in_progress", "Jobs being processed right now, by kind.", ["kind"],
                         multiprocess_mode="livesum")
JOB_SECONDS = Histogram("media_job_seconds", "Wall-clock seconds of a claimed job, by kind and outcome.",
                        ["kind", "outcome"], buckets=JOB_BUCKETS)
STAGE_SECONDS = Histogram("media_stage_seconds",
                          "Seconds per pipeline stage (the pipeline's own timings, plus fetch and store).",
                          ["kind", "stage"], buckets=STAGE_BUCKETS)

# --- errors at the boundaries ---
STORAGE_ERRORS = Counter("media_storage_errors_total", "Storage operations that raised, by operation and code.",
                         ["operation", "code"])
TOOL_ERRORS = Counter("media_tool_errors_total",
                      "External tool runs (ffmpeg, ffprobe, …) that failed or timed out, by tool and code.",
                      ["tool", "code"])

# --- HTTP (API) ---
HTTP_REQUESTS = Counter("media_http_requests_total", "HTTP requests, by route template, method and status.",
                        ["route", "method", "status"])
HTTP_SECONDS = Histogram("media_http_request_seconds", "HTTP request latency, by route template and method.",
                         ["route", "method"], buckets=HTTP_BUCKETS)


def tool_error(argv0: str, code: str) -> None:
    """Counted by the one runner for every failed or timed-out tool run."""
    TOOL_ERRORS.labels(tool=Path(argv0).name or "unknown", code=code).inc()


def storage_error(operation: str, code: str) -> None:
    STORAGE_ERRORS.labels(operation=operation, code=code).inc()


def job_finished(kind: str, outcome: str, seconds: float | None, code: str | None) -> None:
    JOBS.labels(kind=kind, outcome=outcome).inc()
    if code is not None and outcome in ("failed", "retry"):
        JOB_FAILURES.labels(kind=kind, code=code).inc()
    if seconds is not None:
        JOB_SECONDS.labels(kind=kind, outcome=outcome).observe(seconds)


def stage_seconds(kind: str, timings: dict[str, float]) -> None:
    for stage, seconds in timings.items():
        STAGE_SECONDS.labels(kind=kind, stage=stage).observe(max(0.0, seconds))


# --- queues (computed when scraped) ---


@dataclass(frozen=True)
class QueueStats:
    queue: str
    waiting: int  # records accepted and not yet claimed (the database's view)
    oldest_age_seconds: float  # age of the oldest of them; 0 when none wait
    broker_length: int | None = None  # messages in the broker's list, when the broker can say (Redis)


class QueueStatsCollector(Collector):
    """Gauges computed at scrape time from a callable (the database and the broker are asked then)."""

    def __init__(self, source: Callable[[], Iterable[QueueStats]]) -> None:
        self.source = source

    def describe(self) -> Iterator[GaugeMetricFamily]:
        return iter(())  # not known without asking the source; collected on each scrape

    def collect(self) -> Iterator[GaugeMetricFamily]:
        waiting = GaugeMetricFamily("media_queue_waiting", "Media accepted and waiting for a worker, per queue.",
                                    labels=["queue"])
        age = GaugeMetricFamily("media_queue_oldest_age_seconds",
                                "Seconds the oldest waiting media has waited, per queue (0 when none).",
                                labels=["queue"])
        broker = GaugeMetricFamily("media_broker_queue_length",
                                   "Messages in the broker's queue (Redis list length), per queue.", labels=["queue"])
        up = GaugeMetricFamily("media_queue_stats_up", "1 if the queue statistics could be read at this scrape.")
        try:
            stats = list(self.source())
        except Exception:  # a scrape must answer even when the database is down; readiness says why
            up.add_metric([], 0)
            yield up
            return
        up.add_metric([], 1)
        for s in stats:
            waiting.add_metric([s.queue], s.waiting)
            age.add_metric([s.queue], s.oldest_age_seconds)
            if s.broker_length is not None:
                broker.add_metric([s.queue], s.broker_length)
        yield from (waiting, age, broker, up)


# --- exposition ---


def multiprocess_dir() -> str | None:
    return os.environ.get("PROMETHEUS_MULTIPROC_DIR") or None


def scrape_registry(extra: Iterable[Collector] = ()) -> CollectorRegistry:
    """The registry to scrape: in multiprocess mode, a fresh one that merges every process's files;
    otherwise the process's default registry (plus ``extra``)."""
    if multiprocess_dir():
        registry = CollectorRegistry()
        _multiprocess.MultiProcessCollector(registry)  # type: ignore[no-untyped-call]
    else:
        registry = CollectorRegistry()
        registry.register(_Delegate(REGISTRY))
    for collector in extra:
        registry.register(collector)
    return registry


class _Delegate(Collector):
    """The default registry's metrics, inside another registry (so extras can be added per scrape)."""

    def __init__(self, inner: CollectorRegistry) -> None:
        self.inner = inner

    def collect(self) -> Iterable[Metric]:
        return self.inner.collect()

    def describe(self) -> Iterable[Metric]:
        return iter(())


def render(extra: Iterable[Collector] = ()) -> bytes:
    return generate_latest(scrape_registry(extra))
