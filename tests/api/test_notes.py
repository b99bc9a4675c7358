"""Notes over HTTP: validation, a carousel's shared aspect, and a note's state from its items'."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from media_service.config import Settings
from tests.support.media import quadrant_image, save_jpeg
from tests.support.video import make_video

ALICE = {"Authorization": "Bearer alice-key"}
BOB = {"Authorization": "Bearer bob-key"}


@pytest.fixture()
def settings(tmp_path: Path) -> Settings:
    return Settings(data_dir=tmp_path / "data", api_keys="alice-key=alice,bob-key=bob", filters_dirs=[],
                    stickers_dirs=[], music_dirs=[])


def upload(c: TestClient, tmp_path: Path, size: tuple[int, int] = (600, 800), recipe: dict[str, object] | None = None,
           name: str = "p.jpg", headers: dict[str, str] = ALICE) -> str:
    path = tmp_path / f"{size[0]}x{size[1]}-{name}"
    if name.endswith(".mp4"):
        make_video(path, width=size[0], height=size[1], seconds=1.0)
    else:
        save_jpeg(quadrant_image(*size), path)
    r = c.post("/v1/media", headers=headers, files={"file": (name, path.read_bytes())},
               data={"recipe": json.dumps(recipe)} if recipe else None)
    assert r.status_code == 202, r.text
    return str(r.json()["id"])


def finish(c: TestClient, media_id: str, ok: bool = True) -> None:
    """What a worker does to the record."""
    repo = c.app.state.services.repo  # type: ignore[attr-defined]
    claim = repo.claim(media_id, 3)
    if ok:
        repo.publish(media_id, claim.attempt, version="v1", renditions=[], source={}, placeholder=None)
    else:
        repo.fail(media_id, "corrupt_media", "The file could not be decoded.", attempt=claim.attempt)


def test_carousel_takes_the_first_photos_aspect(client: TestClient, tmp_path: Path) -> None:
    first = upload(client, tmp_path, (600, 800))  # 3:4, recipe says nothing
    second = upload(client, tmp_path, (800, 600))  # landscape, recipe says nothing
    third = upload(client, tmp_path, (800, 800), {"aspect": "1:1"})  # the recipe chose: kept
    r = client.post("/v1/notes", headers=ALICE, json={"media": [first, second, third]})
    assert r.status_code == 201, r.text
    note = r.json()
    assert note["kind"] == "carousel" and note["aspect"] == "3:4" and note["status"] == "processing"
    assert [i["id"] for i in note["items"]] == [first, second, third]
    repo = client.app.state.services.repo  # type: ignore[attr-defined]
    assert [repo.get(m).recipe["aspect"] for m in (first, second, third)] == ["3:4", "3:4", "1:1"]


def test_note_is_ready_only_when_every_item_is(client: TestClient, tmp_path: Path) -> None:
    ids = [upload(client, tmp_path, (600, 800), {"aspect": "3:4"}) for _ in range(3)]
    note_id = client.post("/v1/notes", headers=ALICE, json={"media": ids}).json()["id"]
    for media_id in ids[:2]:
        finish(client, media_id)
        assert client.get(f"/v1/notes/{note_id}", headers=ALICE).json()["status"] == "processing"
    finish(client, ids[2])
    note = client.get(f"/v1/notes/{note_id}", headers=ALICE).json()
    assert note["status"] == "ready" and note["failed"] is None
    assert [i["status"] for i in note["items"]] == ["ready"] * 3


def test_failed_note_names_its_item(client: TestClient, tmp_path: Path) -> None:
    ids = [upload(client, tmp_path, (600, 800), {"aspect": "3:4"}) for _ in range(3)]
    note_id = client.post("/v1/notes", headers=ALICE, json={"media": ids}).json()["id"]
    finish(client, ids[0])
    finish(client, ids[1], ok=False)
    note = client.get(f"/v1/notes/{note_id}", headers=ALICE).json()
    assert note["status"] == "failed" and note["failed"]["item"] == ids[1]
    assert note["failed"]["error"]["code"] == "corrupt_media"


def test_video_note_with_a_cover(client: TestClient, tmp_path: Path) -> None:
    video = upload(client, tmp_path, (320, 568), name="v.mp4")
    cover = upload(client, tmp_path, (600, 800))
    r = client.post("/v1/notes", headers=ALICE, json={"media": [video], "cover": cover})
    assert r.status_code == 201, r.text
    note = r.json()
    assert note["kind"] == "video" and note["cover"]["id"] == cover and note["aspect"] is None
    finish(client, video)
    assert client.get(f"/v1/notes/{note['id']}", headers=ALICE).json()["status"] == "processing"  # cover too
    finish(client, cover)
    assert client.get(f"/v1/notes/{note['id']}", headers=ALICE).json()["status"] == "ready"


@pytest.mark.parametrize("case", ["empty", "too_many", "twice", "unknown", "others", "mixed", "two_videos",
                                  "cover_on_carousel", "video_cover"])
def test_bad_notes_are_refused(client: TestClient, tmp_path: Path, case: str) -> None:
    photo = upload(client, tmp_path)
    video = upload(client, tmp_path, (320, 568), name="v.mp4")
    bobs = upload(client, tmp_path, headers=BOB)
    body = {"empty": {"media": []}, "too_many": {"media": [photo] * 19}, "twice": {"media": [photo, photo]},
            "unknown": {"media": ["0" * 32]}, "others": {"media": [bobs]}, "mixed": {"media": [photo, video]},
            "two_videos": {"media": [video, upload(client, tmp_path, (320, 568), name="w.mp4")]},
            "cover_on_carousel": {"media": [photo], "cover": photo}, "video_cover": {"media": [video], "cover": video},
            }[case]
    r = client.post("/v1/notes", headers=ALICE, json=body)
    assert r.status_code == 422, r.text
    assert r.json()["error"]["code"] == "invalid_request"


def test_note_idempotency_and_ownership(client: TestClient, tmp_path: Path) -> None:
    photo = upload(client, tmp_path, recipe={"aspect": "1:1"})
    key = {**ALICE, "Idempotency-Key": "note-1"}
    first = client.post("/v1/notes", headers=key, json={"media": [photo]})
    again = client.post("/v1/notes", headers=key, json={"media": [photo]})
    assert first.status_code == again.status_code == 201 and first.json()["id"] == again.json()["id"]
    other = upload(client, tmp_path, recipe={"aspect": "1:1"})
    r = client.post("/v1/notes", headers=key, json={"media": [other]})
    assert r.status_code == 422 and r.json()["error"]["code"] == "idempotency_key_reused"
    assert client.get(f"/v1/notes/{first.json()['id']}", headers=BOB).status_code == 404
