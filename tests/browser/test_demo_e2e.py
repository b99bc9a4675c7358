"""The /demo page end to end in headless Chromium (Debian's, through Playwright) against the real stack: a photo
with a look and a sticker dragged onto it, then a short video with music played back through hls.js."""

from __future__ import annotations

import io
import re
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import numpy as np
import pytest
from PIL import Image

from tests.e2e.conftest import Stack
from tests.support.video import make_video

pytestmark = pytest.mark.e2e
KEY = "alice-key"
RENDER_TIMEOUT_MS = 90_000
DROP = (0.3, 0.62)  # where the sticker is dropped, as fractions of the picture


@pytest.fixture()
def expected_failures() -> list[str]:
    """URL parts whose failed loads a test causes on purpose (the browser logs them as console errors)."""
    return []


@pytest.fixture()
def page(chromium: Any, browser_stack: Stack, expected_failures: list[str]) -> Iterator[Any]:
    context = chromium.new_context(viewport={"width": 1280, "height": 900}, base_url=browser_stack.base_url)
    page = context.new_page()
    problems: list[str] = []

    def console(msg: Any) -> None:
        where = msg.location.get("url", "")
        if msg.type == "error" and not any(part in where for part in expected_failures):
            problems.append(f"console: {msg.text} ({where})")

    page.on("pageerror", lambda exc: problems.append(f"page error: {exc}"))
    page.on("console", console)
    page.set_default_timeout(20_000)
    try:
        yield page
        assert not problems, problems
    finally:
        context.close()


def open_demo(page: Any) -> None:
    page.goto("/demo")
    page.wait_for_selector("body[data-ready=true]")  # the catalogue is in


def photo(path: Path) -> Path:
    """Bluish-grey, darker to the right: no red anywhere, so a red sticker is easy to find."""
    x = np.linspace(0, 1, 800)[None, :, None]
    pixels = np.broadcast_to(np.array([110, 125, 160]) - 40 * x, (600, 800, 3))
    Image.fromarray(pixels.astype(np.uint8)).save(path, "JPEG", quality=92)
    return path


def drag(page: Any, source: str, target: str, fx: float, fy: float) -> None:
    """Pointer down on ``source``, moved in steps to (fx, fy) of ``target``'s box, released there."""
    a = page.locator(source).bounding_box()
    b = page.locator(target).bounding_box()
    page.mouse.move(a["x"] + a["width"] / 2, a["y"] + a["height"] / 2)
    page.mouse.down()
    page.mouse.move(b["x"] + b["width"] / 2, b["y"] + b["height"] / 2, steps=6)
    page.mouse.move(b["x"] + fx * b["width"], b["y"] + fy * b["height"], steps=6)
    page.mouse.up()


def sample(img: Image.Image, fx: float, fy: float, radius: int = 3) -> tuple[float, float, float]:
    """The mean colour of a small square around (fx, fy) of the image."""
    arr = np.asarray(img.convert("RGB"), dtype=np.float64)
    cx, cy = round(fx * (img.width - 1)), round(fy * (img.height - 1))
    r, g, b = arr[cy - radius:cy + radius + 1, cx - radius:cx + radius + 1].reshape(-1, 3).mean(axis=0)
    return r, g, b


def test_photo_with_a_look_and_a_dragged_sticker(page: Any, tmp_path: Path, artifacts: Path) -> None:
    open_demo(page)
    assert page.get_by_label("Bearer key").input_value() == ""  # not the embedded defaults: nothing filled in
    page.get_by_label("Bearer key").fill(KEY)
    page.reload()
    open_demo(page)
    assert page.get_by_label("Bearer key").input_value() == KEY  # remembered (localStorage)

    page.get_by_label("File", exact=True).set_input_files(photo(tmp_path / "photo.jpg"))
    assert page.locator("[data-testid=preview]").evaluate("img => img.decode().then(() => img.naturalWidth)") == 800
    assert page.locator("[data-testid=music-panel]").is_hidden()  # music is for videos
    # The radio button sits under its thumbnail, which takes the click.
    page.locator('[data-testid=look][data-look-id="starter/warm"]').check(force=True)
    assert page.get_by_label("Intensity").is_enabled()
    drag(page, '[data-testid=sticker][data-sticker-id="starter/heart"]', "[data-testid=stage]", *DROP)
    placed = page.locator("[data-testid=placed-sticker]")
    assert placed.count() == 1
    x, y = float(placed.get_attribute("data-x")), float(placed.get_attribute("data-y"))
    assert abs(x - DROP[0]) < 0.01 and abs(y - DROP[1]) < 0.01, (x, y)
    page.screenshot(path=artifacts / "demo-photo-edit.png", full_page=True)

    with page.expect_request(re.compile(r"/v1/media/[0-9a-f]+/events$")):  # progress from server-sent events
        page.get_by_role("button", name="Upload").click()
    page.wait_for_selector("[data-testid=rendition-img]", timeout=RENDER_TIMEOUT_MS)
    assert page.locator("[data-testid=progress]").get_attribute("data-status") == "ready"
    assert page.locator("[data-testid=error]").is_hidden()
    # Every rendition shows in the page, beside the original.
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid=rendition-img]')]
                                      .every(img => img.complete && img.naturalWidth > 0)""")
    names = page.locator("[data-testid=rendition-img]").evaluate_all("imgs => imgs.map(i => i.dataset.name)")
    assert {"w720.jpg", "w720.webp", "w360.jpg"} <= set(names), names
    assert page.locator('[data-testid=result][data-name=original] img').evaluate("img => img.naturalWidth") == 800
    page.screenshot(path=artifacts / "demo-photo-result.png", full_page=True)

    # The rendition the page shows has the sticker where it was dropped, and the look's background elsewhere.
    url = page.locator('[data-testid=rendition-img][data-name="w720.jpg"]').get_attribute("src")
    rendered = Image.open(io.BytesIO(httpx.get(url, timeout=30).raise_for_status().content))
    assert rendered.size == (720, 540)
    r, g, b = sample(rendered, x, y)
    assert r > 180 and r - g > 100 and r - b > 60, (r, g, b)  # the heart's red
    r, g, b = sample(rendered, 1 - x, y)  # the same place, mirrored: no sticker there
    assert b > r and abs(r - g) < 40, (r, g, b)


def test_video_with_music_plays_through_hls(page: Any, tmp_path: Path, artifacts: Path,
                                            expected_failures: list[str]) -> None:
    # No server-sent events here (a proxy that drops them, say): the page follows the progress by polling.
    expected_failures.append("/events")
    page.route("**/v1/media/*/events", lambda route: route.abort())
    polls: list[str] = []
    page.on("request", lambda r: polls.append(r.url) if re.search(r"/v1/media/[0-9a-f]+$", r.url) else None)
    page.goto("/demo")
    page.evaluate(f"localStorage.setItem('notes-media-demo.api-key', '{KEY}')")
    open_demo(page)
    # Moving content, so that frames at different times look different (the cover picker below).
    clip = make_video(tmp_path / "clip.mp4", width=320, height=568, seconds=2.5, video="testsrc2=size=320x568:rate=30")
    page.get_by_label("File", exact=True).set_input_files(clip)
    page.locator('[data-testid=sticker][data-sticker-id="starter/star"]').press("Enter")  # by keyboard: the middle
    assert page.locator("[data-testid=placed-sticker]").get_attribute("data-x") == "0.5"
    assert page.locator("[data-testid=music-panel]").is_visible()
    page.get_by_label("Track").select_option("tmusic/tone")
    page.get_by_label("Volume").evaluate("r => { r.value = '1.2'; r.dispatchEvent(new Event('input')) }")
    page.screenshot(path=artifacts / "demo-video-edit.png", full_page=True)

    page.get_by_role("button", name="Upload").click()
    player = page.locator("[data-testid=hls-player]")
    player.wait_for(timeout=RENDER_TIMEOUT_MS)
    assert player.get_attribute("data-engine") == "hls.js"  # Chromium has MSE: hls.js, not native HLS
    assert len(polls) >= 2, polls  # polled until ready, then read the renditions
    page.wait_for_function("""() => [...document.querySelectorAll('[data-testid=rendition-img]')]
                                      .every(img => img.complete && img.naturalWidth > 0)""")
    player.evaluate("video => video.play()")  # muted: no user gesture needed
    page.wait_for_function("""() => { const v = document.querySelector('[data-testid=hls-player]');
                                      return v.readyState >= 3 && v.currentTime > 0.3 }""")
    first = player.evaluate("video => video.currentTime")
    time.sleep(0.5)
    state = player.evaluate("v => ({t: v.currentTime, ready: v.readyState, w: v.videoWidth, h: v.videoHeight, "
                            "error: v.error && v.error.code})")
    assert state["t"] > first and state["ready"] >= 3 and state["error"] is None, state
    assert (state["w"], state["h"]) == (320, 568), state
    assert page.locator("[data-testid=error]").is_hidden()
    page.screenshot(path=artifacts / "demo-video-result.png", full_page=True)

    # Cover candidates: picking another frame cuts the poster there again, and the poster card follows.
    candidates = page.locator("[data-testid=cover-candidate]")
    assert candidates.count() >= 2
    chosen = next(i for i in range(candidates.count())
                  if candidates.nth(i).get_attribute("aria-pressed") == "false")
    current = next(i for i in range(candidates.count())
                   if candidates.nth(i).get_attribute("aria-pressed") == "true")
    poster = page.locator('[data-testid=rendition-img][data-name="poster.webp"]')
    before = poster.get_attribute("src")
    candidates.nth(chosen).click()
    page.wait_for_function("""before => { const img = document.querySelector(
                                  '[data-testid=rendition-img][data-name="poster.webp"]');
                              return img.src !== before && img.complete && img.naturalWidth > 0 }""", arg=before)
    assert candidates.nth(chosen).get_attribute("aria-pressed") == "true"

    # What the person now sees as the poster is the frame they picked, not the one before.
    def picture(url: str | None, size: tuple[int, int] | None = None) -> np.ndarray[Any, Any]:
        assert url is not None
        img = Image.open(io.BytesIO(httpx.get(url, timeout=30).raise_for_status().content)).convert("RGB")
        return np.asarray(img.resize(size, Image.Resampling.BOX) if size else img).astype(float)

    thumb = picture(candidates.nth(chosen).locator("img").get_attribute("src"))
    shown = picture(poster.get_attribute("src"), (thumb.shape[1], thumb.shape[0]))
    previous = picture(candidates.nth(current).locator("img").get_attribute("src"))
    assert np.abs(shown - thumb).mean() < 6
    assert np.abs(shown - previous).mean() > 2 * np.abs(shown - thumb).mean() + 4
    assert page.locator("[data-testid=error]").is_hidden()
    page.screenshot(path=artifacts / "demo-video-cover.png", full_page=True)
