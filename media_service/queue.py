"""The Celery application's shared configuration, for the sender (API) and the workers alike.

Given settings as a value: the entry points (app factory, worker bootstrap, CLI) read them.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from celery import Celery
from kombu import Queue  # type: ignore[attr-defined]

from media_service.errors import BrokerUnavailable

if TYPE_CHECKING:
    from media_service.config import Settings

IMAGE_QUEUE, VIDEO_QUEUE = "image", "video"
TASK_FOR_KIND = {"image": "media.process_image", "video": "media.process_video"}
QUEUE_FOR_KIND = {"image": IMAGE_QUEUE, "video": VIDEO_QUEUE}
# (soft, hard) seconds; the soft limit raises inside the task so it can clean up and record the failure.
# The photo pipeline checks its own budget (limits.image_job_seconds) between steps; these catch a step that hangs.
# The parts of a segmented video (a segment, the audio, the stills), and their join.
PART_TASK, JOIN_TASK, SPLIT_FAILED_TASK = "media.video_part", "media.video_join", "media.video_split_failed"
# A new poster for a ready video, from one HLS segment (no re-encode): quick, so on the image queue.
COVER_TASK = "media.set_cover"
TIME_LIMITS = {"media.process_image": (150, 180), "media.process_video": (900, 960), PART_TASK: (600, 660),
               JOIN_TASK: (600, 660), COVER_TASK: (60, 90)}
WORKER_MAX_MEMORY_KIB = 2 * 1024 * 1024


def celery_config(settings: Settings) -> dict[str, Any]:
    transport_options: dict[str, Any] = {}
    if settings.broker_url.startswith("filesystem://"):
        folder = settings.broker_folder
        (folder / "queue").mkdir(parents=True, exist_ok=True)
        for sub in ("processed", "control"):
            (folder / sub).mkdir(parents=True, exist_ok=True)
        transport_options = {"data_folder_in": str(folder / "queue"), "data_folder_out": str(folder / "queue"),
                             "processed_folder": str(folder / "processed"), "store_processed": False,
                             "control_folder": str(folder / "control")}
    elif settings.broker_url.startswith(("redis://", "rediss://")):
        # An unacked task becomes visible again after this long; it must exceed the longest job.
        # A dead worker's job waits visibility_timeout, then the next sweep (every restore_interval, by any
        # worker) hands it on; kombu's default sweeps only every ~100 s.
        restore_interval = max(1, min(10, settings.visibility_timeout // 5))
        transport_options = {"visibility_timeout": settings.visibility_timeout, "unacked_restore_interval":
                             restore_interval, "unacked_restore_throttle": 1, "socket_timeout": 5,
                             "socket_connect_timeout": 5}
    return {
        "broker_url": settings.broker_url,
        "broker_transport_options": transport_options,
        "broker_connection_retry_on_startup": True,
        "broker_connection_timeout": 5,
        "task_queues": [Queue(IMAGE_QUEUE), Queue(VIDEO_QUEUE)],  # type: ignore[no-untyped-call]
        "task_default_queue": IMAGE_QUEUE,
        "task_routes": {**{name: {"queue": QUEUE_FOR_KIND[kind]} for kind, name in TASK_FOR_KIND.items()},
                        **{name: {"queue": VIDEO_QUEUE} for name in (PART_TASK, JOIN_TASK, SPLIT_FAILED_TASK)},
                        COVER_TASK: {"queue": IMAGE_QUEUE}},
        "task_acks_late": True,
        "task_reject_on_worker_lost": True,
        "task_ignore_result": True,
        "task_serializer": "json",
        "accept_content": ["json"],
        "worker_prefetch_multiplier": 1,
        # A pool process that grew past this after a job (a big decode, a leak) is replaced before the next one.
        "worker_max_memory_per_child": WORKER_MAX_MEMORY_KIB,
        "worker_hijack_root_logger": False,
        "task_annotations": {name: {"soft_time_limit": soft, "time_limit": hard}
                             for name, (soft, hard) in TIME_LIMITS.items()},
        # Only the segmented path's parts store results (a chord counts them there); the ledger is the database.
        **({"result_backend": settings.result_backend, "result_expires": 6 * 3600} if settings.result_backend
           else {}),
        "task_publish_retry": True,
        "task_publish_retry_policy": {"max_retries": 2, "interval_start": 0.2, "interval_step": 0.5,
                                      "interval_max": 1.0},
    }


def make_celery(settings: Settings, name: str = "notes-media") -> Celery:
    app = Celery(name)
    app.conf.update(celery_config(settings))
    return app


def fair_priority(waiting_for_owner: int) -> int:
    """Per-owner fairness: the more an owner already has waiting, the lower its new jobs go (kombu's Redis
    priority lists 0, 3, 6, 9; 0 is consumed first). One photo from someone with nothing waiting overtakes
    a heavy uploader's backlog, and that backlog still drains in its own order."""
    if waiting_for_owner < 2:
        return 0
    if waiting_for_owner < 8:
        return 3
    if waiting_for_owner < 32:
        return 6
    return 9


class JobQueue:
    """What the API uses to hand a media id to the workers."""

    def __init__(self, app: Celery) -> None:
        self.app = app

    def enqueue(self, media_id: str, kind: str, priority: int = 0) -> None:
        """``priority``: 0 first … 9 last (Redis; the file-system broker of the embedded defaults is FIFO)."""
        try:
            # ignore_result: with a result backend configured (segmented videos), the sender would otherwise
            # subscribe to every job's result channel and never read it.
            self.app.send_task(TASK_FOR_KIND[kind], args=[media_id], queue=QUEUE_FOR_KIND[kind], priority=priority,
                               ignore_result=True)
        except Exception as exc:  # kombu raises many transport-specific types; all mean "not queued"
            raise BrokerUnavailable(detail=repr(exc)) from None

    def enqueue_cover(self, media_id: str, time: float) -> None:
        """Render the poster of a ready video again at ``time`` (seconds into the result)."""
        try:
            self.app.send_task(COVER_TASK, args=[media_id, time], queue=IMAGE_QUEUE, priority=0, ignore_result=True)
        except Exception as exc:
            raise BrokerUnavailable(detail=repr(exc)) from None

    def check(self) -> None:
        try:
            with self.app.connection_for_write() as conn:
                conn.ensure_connection(max_retries=1, timeout=3)
        except Exception as exc:
            raise BrokerUnavailable(detail=repr(exc)) from None
