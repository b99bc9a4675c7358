"""Designer packs rolled out without a redeploy: publish → the API lists it → a worker renders with it,
on the S3 server, with neither process restarted; rerender with a new version; rollback; broken refused."""

from __future__ import annotations

import io
import subprocess
import time
from pathlib import Path

import httpx
import pytest
from PIL import Image

from tests.e2e.conftest import Stack
from tests.e2e.test_photo_e2e import ALICE, upload, wait_terminal
from tests.support.media import mean_rgb, save_jpeg
from tests.support.procs import REPO, media_service
from tests.unit.test_pack_store import look_pack

pytestmark = pytest.mark.e2e


def cli(stack: Stack, *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(media_service("packs", *args), env=stack.env, cwd=REPO, capture_output=True, text=True,
                          timeout=120)


def listed_version(stack: Stack, item: str, timeout: float = 15) -> str | None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        items = {i["id"]: i for i in httpx.get(f"{stack.base_url}/v1/filters").json()["items"]}
        if item in items:
            return str(items[item]["version"])
        time.sleep(0.3)
    return None


def wait_listed(stack: Stack, item: str, version: str, timeout: float = 15) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and listed_version(stack, item, 1) != version:
        time.sleep(0.3)
    assert listed_version(stack, item, 1) == version


def tint_pack(tmp_path: Path, version: str, channel: int) -> Path:
    archive = look_pack(tmp_path / "src", version, 0.0)
    # Rebuild with the shift on the wanted channel (0 red, 2 blue).
    from media_service.packs.archive import build_zip
    from tests.support.packs import cube_text

    pack = tmp_path / "src" / version / "fresh"
    (pack / "luts" / "tint.cube").write_text(cube_text(
        3, lambda r, g, b: tuple(min(1.0, v + 0.3) if i == channel else v for i, v in enumerate((r, g, b)))))
    return build_zip(pack, archive)


def test_publish_use_rerender_rollback(stack: Stack, tmp_path: Path) -> None:
    done = cli(stack, "publish", str(tint_pack(tmp_path, "1.0.0", channel=0)))
    assert done.returncode == 0, done.stdout + done.stderr
    wait_listed(stack, "fresh/tint", "1.0.0")

    photo = save_jpeg(Image.new("RGB", (800, 600), (128, 128, 128)), tmp_path / "g.jpg", quality=98).read_bytes()
    media_id = upload(stack, photo, {"filter": {"id": "fresh/tint", "intensity": 1.0}}).json()["id"]
    body, _ = wait_terminal(stack, media_id)
    assert body["status"] == "ready", body
    r = next(x for x in body["renditions"] if x["name"] == "w720.jpg")
    assert r["packs"] == {"fresh/tint": "1.0.0"}
    red, _, blue = mean_rgb(Image.open(io.BytesIO(httpx.get(r["url"]).content)), (100, 100, 600, 400))
    assert red > 190 and blue < 140
    first_version = body["version"]

    done = cli(stack, "publish", str(tint_pack(tmp_path / "v2", "1.1.0", channel=2)))
    assert done.returncode == 0, done.stdout + done.stderr
    wait_listed(stack, "fresh/tint", "1.1.0")
    time.sleep(1.2)  # the worker looks at the index when a job starts, at most once a second here
    rr = httpx.post(f"{stack.base_url}/v1/media/{media_id}/rerender", headers=ALICE)
    assert rr.status_code == 202, rr.text
    assert rr.json()["renditions"], "the previous set keeps serving while the new one renders"
    body, _ = wait_terminal(stack, media_id)
    assert body["status"] == "ready" and body["version"] != first_version
    r = next(x for x in body["renditions"] if x["name"] == "w720.jpg")
    assert r["packs"] == {"fresh/tint": "1.1.0"}
    red, _, blue = mean_rgb(Image.open(io.BytesIO(httpx.get(r["url"]).content)), (100, 100, 600, 400))
    assert blue > 190 and red < 140
    assert stack.storage.list_keys(f"media/{media_id}/{first_version}/") == []  # the old set is gone

    broken = tint_pack(tmp_path / "v3", "1.2.0", channel=1)
    bad_dir = tmp_path / "v3" / "src" / "1.2.0" / "fresh"
    (bad_dir / "luts" / "tint.cube").write_text("LUT_3D_SIZE 2\n0 0 0\n")
    from media_service.packs.archive import build_zip

    build_zip(bad_dir, broken)
    done = cli(stack, "publish", str(broken))
    assert done.returncode == 1 and "needs 8 rows" in done.stdout
    assert listed_version(stack, "fresh/tint") == "1.1.0"

    done = cli(stack, "rollback", "fresh", "1.0.0")
    assert done.returncode == 0, done.stdout + done.stderr
    wait_listed(stack, "fresh/tint", "1.0.0")
    listing = cli(stack, "list")
    assert "fresh" in listing.stdout and "[1.0.0], 1.1.0" in listing.stdout
