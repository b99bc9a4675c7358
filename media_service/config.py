"""Settings from the environment (prefix MEDIA_), validated at start. Only entry points read them."""

from __future__ import annotations

import hashlib
import secrets
from functools import cached_property
from pathlib import Path
from typing import Annotated, Any, Literal

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

from media_service.limits import Limits

REPO_ROOT = Path(__file__).resolve().parent.parent


def _default_data_dir() -> Path:
    return Path.cwd() / "var"


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="MEDIA_", env_nested_delimiter="__", extra="ignore")

    # Embedded defaults: everything lives under data_dir and needs no server.
    data_dir: Path = Field(default_factory=_default_data_dir)
    database_url: str = ""  # default: sqlite:///<data_dir>/media.db
    broker_url: str = ""  # default: filesystem broker under <data_dir>/broker
    storage_url: str = ""  # default: file://<data_dir>/storage
    s3_endpoint_url: str | None = None
    # "key1=owner1,sha256:<hex of sha256(key2)>=owner2": raw keys for development, hashes for production
    # (or keys made with `media-service keys create`, kept hashed in the database).
    api_keys: str = ""
    rate_limit_per_minute: int = Field(default=600, ge=1)  # requests per API key (a bucket this deep)
    upload_rate_per_minute: int = Field(default=60, ge=1)  # uploads per API key
    quota_bytes_per_day: int = Field(default=20 * 1024**3, ge=0)  # per owner, UTC days
    quota_video_seconds_per_day: float = Field(default=4 * 3600, ge=0)  # seconds of rendered video per owner
    max_video_backlog: int = Field(default=200, ge=1)  # queued videos beyond which new ones get 503
    # Resumable (tus) uploads: partial bytes under <data_dir>/uploads, removed this long after the last PATCH.
    upload_expiry_seconds: float = Field(default=24 * 3600.0, ge=1)
    # Direct-to-S3 uploads: the largest object a client may announce, and the presigned part size.
    direct_upload_max_bytes: int = Field(default=2 * 1024**3, ge=1)
    direct_part_bytes: int = Field(default=8 * 1024**2, ge=5 * 1024**2, le=5 * 1024**3)
    public_base_url: str = "http://127.0.0.1:8000"
    signing_secret: str = ""  # for local download URLs; default: a random per-data-dir secret
    url_ttl_seconds: int = Field(default=900, ge=10, le=7 * 24 * 3600)
    # Colon-separated in the environment, like PATH.
    filters_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [REPO_ROOT / "filters"])
    stickers_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [REPO_ROOT / "stickers"])
    music_dirs: Annotated[list[Path], NoDecode] = Field(default_factory=lambda: [REPO_ROOT / "music"])
    packs_refresh_seconds: float = Field(default=30.0, ge=0.5, le=3600)  # how soon a published pack is live
    max_attempts: int = Field(default=3, ge=1, le=20)
    worker_concurrency: int = Field(default=2, ge=1, le=64)
    visibility_timeout: int = Field(default=3600, ge=10)
    # The reconciler (in each worker): how often it looks, and when a record counts as lost by the broker.
    reconcile_seconds: float = Field(default=60.0, ge=0)  # 0: off
    stuck_queued_seconds: float = Field(default=900.0, ge=1)
    stuck_processing_seconds: float = Field(default=1800.0, ge=1)
    # A running job beats every quarter of this; a new message for a record whose job has not beaten for this
    # long takes it over (its worker died), one for a live job waits and looks again.
    processing_lease_seconds: float = Field(default=120.0, ge=2)
    # Long videos by segments on several workers (a Celery chord; needs a result backend, so a Redis broker or
    # result_backend_url): a video whose result lasts at least segment_min_seconds (0: never, the default) is
    # cut into segments of about segment_seconds (whole 2 s GOPs), rendered in parallel and joined.
    segment_seconds: float = Field(default=10.0, ge=2, le=60)
    segment_min_seconds: float = Field(default=0.0, ge=0)
    # Long videos in pieces on the worker itself (pipeline/pieces.py): a result of at least
    # video_pieces_min_seconds is rendered as this many pieces at once, ffmpeg process each (0: one per CPU the
    # worker may use; 1: always one pass, which also keeps the growing lowest-rung playlist of long videos).
    video_pieces: int = Field(default=0, ge=0, le=16)
    video_pieces_min_seconds: float = Field(default=20.0, ge=0)
    result_backend_url: str = ""  # default: the broker's URL when it is Redis, else none
    # Webhooks: delivered by the workers; retried after each of these many seconds (about a day in all).
    webhook_backoff: Annotated[list[float], NoDecode] = Field(
        default_factory=lambda: [10.0, 30.0, 60.0, 300.0, 900.0, 1800.0, 3600.0, 7200.0, 14400.0, 28800.0, 28800.0])
    webhook_allow_private: bool = False  # development only: lets webhooks reach localhost/private networks
    # Browser apps on other origins (tus-js-client, direct uploads, the player): comma-separated origins, or "*".
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)
    limits: Limits = Field(default_factory=Limits)
    host: str = "127.0.0.1"
    port: int = 8000
    # Observability: log lines as JSON objects (one per line) or plain text; where a worker serves /metrics.
    log_format: Literal["json", "text"] = "json"
    log_level: Literal["DEBUG", "INFO", "WARNING", "ERROR"] = "INFO"
    worker_metrics_port: int = Field(default=0, ge=0, le=65535)  # 0: no metrics server (e.g. 9108 to serve)
    worker_metrics_host: str = "127.0.0.1"

    @field_validator("log_format", "log_level", mode="before")
    @classmethod
    def _case(cls, value: object, info: Any) -> object:
        if isinstance(value, str):
            return value.strip().lower() if info.field_name == "log_format" else value.strip().upper()
        return value

    @field_validator("webhook_backoff", mode="before")
    @classmethod
    def _split_numbers(cls, value: object) -> object:
        if isinstance(value, str):
            return [float(v) for v in value.split(",") if v.strip()]
        return value

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: object) -> object:
        if isinstance(value, str):
            return [v.strip().rstrip("/") for v in value.split(",") if v.strip()]
        return value

    @field_validator("filters_dirs", "stickers_dirs", "music_dirs", mode="before")
    @classmethod
    def _split_paths(cls, value: object) -> object:
        if isinstance(value, str):
            return [Path(p) for p in value.split(":") if p]
        return value

    def model_post_init(self, _context: object) -> None:
        self.data_dir = self.data_dir.resolve()
        if not self.database_url:
            self.database_url = f"sqlite:///{self.data_dir / 'media.db'}"
        if not self.broker_url:
            self.broker_url = "filesystem://"
        if not self.storage_url:
            self.storage_url = f"file://{self.data_dir / 'storage'}"

    @property
    def result_backend(self) -> str:
        """Celery's result backend (chords need one): set, or the Redis broker itself, or none."""
        if self.result_backend_url:
            return self.result_backend_url
        return self.broker_url if self.broker_url.startswith(("redis://", "rediss://")) else ""

    @property
    def broker_folder(self) -> Path:
        return self.data_dir / "broker"

    @cached_property
    def key_owners(self) -> dict[str, str]:
        """sha256(key) → owner. Keys are compared by hash so the raw key is never kept around."""
        owners: dict[str, str] = {}
        for pair in filter(None, (p.strip() for p in self.api_keys.split(","))):
            key, sep, owner = pair.rpartition("=")
            key = key.strip()
            if not sep or not key or not owner.strip():
                raise ValueError("MEDIA_API_KEYS must look like key1=owner1,sha256:<64 hex digits>=owner2")
            if key.startswith("sha256:"):
                digest = key.removeprefix("sha256:").lower()
                if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
                    raise ValueError("MEDIA_API_KEYS: a hashed key is sha256: and 64 hex digits")
                owners[digest] = owner.strip()
            else:
                owners[hashlib.sha256(key.encode()).hexdigest()] = owner.strip()
        return owners

    @cached_property
    def signing_key(self) -> bytes:
        if self.signing_secret:
            return self.signing_secret.encode()
        path = self.data_dir / "signing.key"
        if not path.exists():
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_text(secrets.token_hex(32))
            path.chmod(0o600)
        return path.read_text().strip().encode()


def load_settings() -> Settings:
    return Settings()
