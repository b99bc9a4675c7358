"""A small typed client for the notes-media API (httpx), for apps, scripts and the service's own tests.

    with MediaClient("http://127.0.0.1:8000", "dev-key") as client:
        media = client.upload("photo.jpg", {"aspect": "3:4", "filter": {"id": "starter/warm"}})
        media = client.wait(media.id)
        print(media.status, [r.name for r in media.renditions])

Errors come back as ``ApiError`` carrying the HTTP status, the machine-readable ``code`` and the message,
so callers branch on codes (and ``retry_after`` for 429/503), never on text.
"""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import httpx

TERMINAL = ("ready", "failed")


class ApiError(Exception):
    def __init__(self, status: int, code: str, message: str, body: dict[str, Any],
                 retry_after: int | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status, self.code, self.message, self.body, self.retry_after = status, code, message, body, retry_after


@dataclass(frozen=True)
class Rendition:
    name: str
    content_type: str
    url: str
    width: int | None = None
    height: int | None = None
    bytes: int | None = None
    extra: dict[str, Any] = field(default_factory=dict)

    @classmethod
    def of(cls, data: dict[str, Any]) -> Rendition:
        known = {"name", "content_type", "url", "width", "height", "bytes"}
        return cls(data["name"], data["content_type"], data["url"], data.get("width"), data.get("height"),
                   data.get("bytes"), {k: v for k, v in data.items() if k not in known})


@dataclass(frozen=True)
class Media:
    id: str
    kind: str
    status: str
    progress: float
    error: dict[str, Any] | None
    source: dict[str, Any]
    renditions: list[Rendition]
    placeholder: dict[str, Any] | None
    raw: dict[str, Any]
    usable: list[Rendition] = field(default_factory=list)  # a video in progress: poster, the 480p as it grows
    cover: dict[str, Any] | None = None  # a video: {time, poster_time, pending}

    @classmethod
    def of(cls, data: dict[str, Any]) -> Media:
        return cls(data["id"], data["kind"], data["status"], data["progress"], data.get("error"),
                   data.get("source") or {}, [Rendition.of(r) for r in data.get("renditions") or []],
                   data.get("placeholder"), data, [Rendition.of(r) for r in data.get("usable") or []],
                   data.get("cover"))

    def rendition(self, name: str) -> Rendition:
        for r in self.renditions:
            if r.name == name:
                return r
        raise KeyError(f"no rendition {name!r}; there are {[r.name for r in self.renditions]}")


@dataclass(frozen=True)
class Note:
    id: str
    kind: str
    status: str
    failed: dict[str, Any] | None
    aspect: str | None
    items: list[Media | None]
    cover: Media | None
    raw: dict[str, Any]

    @classmethod
    def of(cls, data: dict[str, Any]) -> Note:
        return cls(data["id"], data["kind"], data["status"], data.get("failed"), data.get("aspect"),
                   [Media.of(i) if i else None for i in data["items"]],
                   Media.of(data["cover"]) if data.get("cover") else None, data)


class MediaClient:
    def __init__(self, base_url: str, api_key: str | None = None, *, timeout: float = 60.0,
                 transport: httpx.BaseTransport | None = None) -> None:
        headers = {"Authorization": f"Bearer {api_key}"} if api_key else {}
        self.http = httpx.Client(base_url=base_url.rstrip("/"), headers=headers, timeout=timeout,
                                 transport=transport)

    def __enter__(self) -> MediaClient:
        return self

    def __exit__(self, *_exc: object) -> None:
        self.close()

    def close(self) -> None:
        self.http.close()

    def _check(self, response: httpx.Response) -> httpx.Response:
        if response.status_code >= 400:
            try:
                body = response.json()
                error = body.get("error", {})
            except ValueError:
                body, error = {}, {}
            retry = response.headers.get("retry-after")
            raise ApiError(response.status_code, error.get("code", "error"), error.get("message", response.text[:200]),
                           body, int(retry) if retry and retry.isdigit() else None)
        return response

    # --- media -------------------------------------------------------------------------------------

    def upload(self, file: str | Path | BinaryIO, recipe: dict[str, Any] | None = None, *, filename: str | None = None,
               idempotency_key: str | None = None) -> Media:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        data = {"recipe": json.dumps(recipe)} if recipe is not None else None
        if isinstance(file, str | Path):
            path = Path(file)
            with path.open("rb") as f:
                r = self.http.post("/v1/media", files={"file": (filename or path.name, f)}, data=data, headers=headers)
        else:
            r = self.http.post("/v1/media", files={"file": (filename or "upload", file)}, data=data, headers=headers)
        return Media.of(self._check(r).json())

    def get(self, media_id: str) -> Media:
        return Media.of(self._check(self.http.get(f"/v1/media/{media_id}")).json())

    def wait(self, media_id: str, timeout: float = 120.0, interval: float = 0.25) -> Media:
        """Poll until ready or failed (``TimeoutError`` otherwise)."""
        deadline = time.monotonic() + timeout
        while True:
            media = self.get(media_id)
            if media.status in TERMINAL:
                return media
            if time.monotonic() > deadline:
                raise TimeoutError(f"media {media_id} still {media.status} after {timeout:.0f} s")
            time.sleep(interval)

    def events(self, media_id: str) -> Iterator[dict[str, Any]]:
        """Server-sent events: each status/progress change until the media is ready or failed."""
        with self.http.stream("GET", f"/v1/media/{media_id}/events", timeout=None) as r:
            if r.status_code >= 400:
                r.read()
                self._check(r)
            for line in r.iter_lines():
                if line.startswith("data: "):
                    yield json.loads(line[6:])

    def covers(self, media_id: str, n: int = 6) -> list[dict[str, Any]]:
        """A rendered video's cover candidates, best first: index, time, score, scores, url."""
        return list(self._check(self.http.get(f"/v1/media/{media_id}/covers", params={"n": n})).json()["items"])

    def choose_cover(self, media_id: str, *, time: float | None = None, candidate: int | None = None) -> Media:
        """Move the poster to ``time`` (or to a candidate); ``cover["pending"]`` until it is rendered."""
        body = {"time": time} if time is not None else {"candidate": candidate}
        return Media.of(self._check(self.http.put(f"/v1/media/{media_id}/cover", json=body)).json())

    def rerender(self, media_id: str) -> Media:
        return Media.of(self._check(self.http.post(f"/v1/media/{media_id}/rerender")).json())

    def delete(self, media_id: str) -> None:
        self._check(self.http.delete(f"/v1/media/{media_id}"))

    def usage(self) -> dict[str, Any]:
        return dict(self._check(self.http.get("/v1/usage")).json())

    # --- notes, webhooks, catalogue ----------------------------------------------------------------

    def create_note(self, media: list[str], cover: str | None = None, *, idempotency_key: str | None = None) -> Note:
        headers = {"Idempotency-Key": idempotency_key} if idempotency_key else {}
        body: dict[str, Any] = {"media": media} | ({"cover": cover} if cover else {})
        return Note.of(self._check(self.http.post("/v1/notes", json=body, headers=headers)).json())

    def note(self, note_id: str) -> Note:
        return Note.of(self._check(self.http.get(f"/v1/notes/{note_id}")).json())

    def add_webhook(self, url: str) -> dict[str, Any]:
        return dict(self._check(self.http.post("/v1/webhooks", json={"url": url})).json())

    def deliveries(self, media_id: str) -> list[dict[str, Any]]:
        return list(self._check(self.http.get(f"/v1/media/{media_id}/deliveries")).json()["items"])

    def filters(self) -> list[dict[str, Any]]:
        return list(self._check(self.http.get("/v1/filters")).json()["items"])

    def stickers(self) -> list[dict[str, Any]]:
        return list(self._check(self.http.get("/v1/stickers")).json()["items"])

    def music(self) -> list[dict[str, Any]]:
        return list(self._check(self.http.get("/v1/music")).json()["items"])
