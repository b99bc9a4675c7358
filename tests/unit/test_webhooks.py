"""Webhook events: written to the outbox with the state change, delivered signed, retried with backoff,
every attempt logged; URLs to private addresses refused (SSRF)."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from media_service.db import Database, MediaRecord, MediaRepo, Status
from media_service.db.outbox import WebhookRepo
from media_service.errors import InvalidRequest
from media_service.webhooks import check_url, deliver_due, http_post, sign, verify
from tests.support.receiver import webhook_receiver


@pytest.fixture()
def db(tmp_path: Path) -> Database:
    database = Database(f"sqlite:///{tmp_path / 'w.db'}")
    database.create_all()
    return database


def add_media(db: Database, media_id: str = "m1", owner: str = "alice") -> MediaRepo:
    repo = MediaRepo(db)
    repo.create(MediaRecord(id=media_id, owner=owner, kind="image", status=Status.QUEUED.value, progress=0.0,
                            recipe={}, source={}, renditions=[], original_key="k", original_bytes=1,
                            original_format="jpeg", attempts=0))
    return repo


def test_signature_round_trip_and_tampering() -> None:
    body = b'{"type":"media.ready"}'
    header = sign("whsec_x", 1_800_000_000, body)
    assert verify("whsec_x", header, body, now=1_800_000_010)
    assert not verify("whsec_x", header, body + b" ", now=1_800_000_010)  # body changed
    assert not verify("whsec_y", header, body, now=1_800_000_010)  # another secret
    assert not verify("whsec_x", header, body, now=1_800_000_000 + 3600)  # replayed an hour later
    assert not verify("whsec_x", "garbage", body)


@pytest.mark.parametrize("url", ["http://127.0.0.1:9/x", "http://localhost/x", "http://10.1.2.3/x",
                                 "http://169.254.169.254/latest/meta-data", "http://[::1]/x", "ftp://example.com/x",
                                 "file:///etc/passwd"])
def test_private_and_odd_urls_are_refused(url: str) -> None:
    with pytest.raises(InvalidRequest):
        check_url(url, allow_private=False)


def test_events_follow_state_changes_and_are_retried_until_delivered(db: Database) -> None:
    with webhook_receiver(fail_first=2) as (url, received):
        hook = WebhookRepo(db).create("alice", url)
        WebhookRepo(db).create("bob", url)  # another owner's webhook hears nothing of alice's media
        repo = add_media(db)
        claim = repo.claim("m1", 3)
        repo.publish("m1", claim.attempt, version="v1", renditions=[{"name": "w1080.webp", "key": "k"}], source={},
                     placeholder=None)
        deadline = time.monotonic() + 20
        while len(received.delivered()) < 3 and time.monotonic() < deadline:
            deliver_due(db, WebhookRepo(db).endpoint, http_post, backoff=[0.05, 0.05, 0.05])
            time.sleep(0.06)
        events = [r["json"]["type"] for r in received.delivered()]
        assert events == ["media.queued", "media.processing", "media.ready"]
        ready = received.delivered()[-1]
        assert ready["json"]["data"]["media"]["renditions"] == ["w1080.webp"]
        assert verify(hook.secret, ready["headers"]["Notes-Signature"], ready["body"])
        assert len(received.requests) == 9  # each event failed twice, then went through
    log = WebhookRepo(db).deliveries("alice", "m1")
    assert [d.state for d in log] == ["delivered"] * 3 and all(d.attempts == 3 for d in log)
    assert [a["status"] for a in log[0].log] == [500, 500, 200]


def test_delivery_given_up_after_the_schedule(db: Database) -> None:
    hook = WebhookRepo(db).create("alice", "http://127.0.0.1:1/closed")
    add_media(db)
    for _ in range(5):
        deliver_due(db, WebhookRepo(db).endpoint, http_post, backoff=[0.0, 0.0])
    (delivery,) = WebhookRepo(db).deliveries("alice", "m1")
    assert delivery.state == "failed" and delivery.attempts == 3
    assert all(a["status"] is None and "Error" in a["error"] for a in delivery.log)
    assert hook.id == delivery.webhook_id


def test_deleted_webhook_drops_its_deliveries(db: Database) -> None:
    hook = WebhookRepo(db).create("alice", "http://127.0.0.1:1/x")
    add_media(db)
    assert WebhookRepo(db).delete("alice", hook.id)
    deliver_due(db, WebhookRepo(db).endpoint, http_post)
    (delivery,) = WebhookRepo(db).deliveries("alice", "m1")
    assert delivery.state == "failed" and delivery.log[-1]["error"] == "webhook deleted"


def test_the_readme_snippet_verifies_our_signatures() -> None:
    import re

    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text(encoding="utf-8")
    section = readme[readme.index("### Webhooks"):]
    code = re.search(r"```python\n(.*?)```", section, re.S)
    assert code
    namespace: dict[str, object] = {}
    exec(code.group(1), namespace)
    snippet = namespace["verify"]
    body = b'{"type":"media.ready"}'
    header = sign("whsec_abc", int(time.time()), body)
    assert snippet("whsec_abc", header, body) is True  # type: ignore[operator]
    assert snippet("whsec_abc", header, body + b"x") is False  # type: ignore[operator]
