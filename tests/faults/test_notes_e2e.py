"""A carousel through real workers: photos of different shapes come out in the first one's aspect, and the
note turns ready (with a note.ready webhook) only when every photo has."""

from __future__ import annotations

from pathlib import Path

from tests.faults.conftest import FaultStack
from tests.support.faults import wait_until
from tests.support.media import quadrant_image, save_jpeg
from tests.support.receiver import webhook_receiver


def test_carousel_shares_the_first_aspect_and_is_ready_last(fault_stack: FaultStack, tmp_path: Path) -> None:
    fault_stack.start_api()
    shapes = [(600, 800), (1200, 700), (900, 900)]
    photos = [save_jpeg(quadrant_image(w, h), tmp_path / f"{w}x{h}.jpg") for w, h in shapes]
    ids = []
    for path in photos:
        status, body = fault_stack.upload(path)
        assert status == 202, body
        ids.append(body["id"])
    with webhook_receiver() as (url, received):
        assert fault_stack.post_json("/v1/webhooks", {"url": url})[0] == 201
        status, note = fault_stack.post_json("/v1/notes", {"media": ids})
        assert status == 201 and note["aspect"] == "3:4", note
        fault_stack.start_worker("w1")
        fault_stack.check_invariants(ids, timeout=120)
        wait_until(lambda: fault_stack.get(f"/v1/notes/{note['id']}")[1]["status"] == "ready", 30, 0.3, "note ready")
        wait_until(lambda: any(r["json"]["type"] == "note.ready" for r in received.delivered()), 30, 0.3,
                   "note.ready delivered")
    _, view = fault_stack.get(f"/v1/notes/{note['id']}")
    assert [i["id"] for i in view["items"]] == ids
    for item in view["items"]:
        best = max(item["renditions"], key=lambda r: r["width"])
        assert abs(best["width"] / best["height"] - 3 / 4) < 0.01, best
    note_events = [r["json"]["type"] for r in received.delivered() if r["json"]["type"].startswith("note.")]
    assert note_events[-1] == "note.ready" and note_events.count("note.ready") == 1
