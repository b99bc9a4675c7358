"""Webhooks through the real stack: a receiver on loopback that fails the first attempts gets every state
change of a media, signed, once it answers; the delivery log over the API shows the attempts."""

from __future__ import annotations

from pathlib import Path

from media_service.webhooks import verify
from tests.faults.conftest import FaultStack
from tests.support.faults import wait_until
from tests.support.receiver import webhook_receiver


def test_every_state_change_is_delivered_signed_despite_failures(fault_stack: FaultStack,
                                                                  media_files: dict[str, Path]) -> None:
    fault_stack.start_api()
    fault_stack.start_worker("w1")
    with webhook_receiver(fail_first=2) as (url, received):
        status, hook = fault_stack.post_json("/v1/webhooks", {"url": url})
        assert status == 201, hook
        ids = fault_stack.batch(media_files, photos=1, videos=1)
        fault_stack.check_invariants(ids, timeout=120)

        def all_delivered() -> bool:
            types = {(r["json"]["data"]["media"]["id"], r["json"]["type"]) for r in received.delivered()}
            return all((i, t) in types for i in ids for t in ("media.queued", "media.processing", "media.ready"))

        wait_until(all_delivered, 60, 0.5, "every event delivered")
        for request in received.delivered():
            assert verify(hook["secret"], request["headers"]["Notes-Signature"], request["body"])
        ready = next(r for r in received.delivered() if r["json"]["type"] == "media.ready"
                     and r["json"]["data"]["media"]["id"] == ids[0])
        assert ready["json"]["data"]["media"]["status"] == "ready" and ready["json"]["data"]["media"]["renditions"]
    status, log = fault_stack.get(f"/v1/media/{ids[0]}/deliveries")
    assert status == 200
    by_event = {d["event"]: d for d in log["items"]}
    assert set(by_event) == {"media.queued", "media.processing", "media.ready"}
    assert all(d["state"] == "delivered" and d["attempts"] == 3 for d in by_event.values())
    assert [a["status"] for a in by_event["media.ready"]["log"]] == [500, 500, 200]
