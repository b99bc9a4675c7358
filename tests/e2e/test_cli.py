"""The CLI as designers and operators use it: `process` renders locally, `doctor` checks the stack."""

from __future__ import annotations

import json
import os
import subprocess
from pathlib import Path

import pytest
from PIL import Image

from tests.support.media import save_jpeg
from tests.support.procs import REPO, media_service
from tests.support.s3server import free_port

pytestmark = pytest.mark.e2e


def run(args: list[str], env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(media_service(*args), env=env, cwd=REPO, capture_output=True, text=True, timeout=120)


def clean_env(tmp_path: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MEDIA_")}
    return env | {"MEDIA_DATA_DIR": str(tmp_path / "data")}


def test_process_renders_locally(tmp_path: Path) -> None:
    src = save_jpeg(Image.new("RGB", (2000, 1500), (128, 128, 128)), tmp_path / "p.jpg", orientation=6)
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"aspect": "3:4", "filter": {"id": "starter/bw"},
                                  "stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.5, "scale": 0.3}]}))
    out = tmp_path / "out"
    done = run(["process", str(src), "--recipe", str(recipe), "--out", str(out)], clean_env(tmp_path))
    assert done.returncode == 0, done.stderr
    result = json.loads((out / "result.json").read_text())
    assert result["source"] == {"format": "jpeg", "width": 1500, "height": 2000}
    files = sorted(p.name for p in out.iterdir())
    assert files == ["result.json", "w1080.jpg", "w1080.webp", "w360.jpg", "w360.webp", "w720.jpg", "w720.webp"]
    img = Image.open(out / "w1080.webp").convert("RGB")
    assert img.size == (1080, 1440)
    r, g, b = img.getpixel((50, 50))  # type: ignore[misc]
    assert r == g == b or max(r, g, b) - min(r, g, b) <= 2  # black and white look
    r, g, b = img.getpixel((540, 720))  # type: ignore[misc]
    assert r > 200 and g < 110  # the heart in the middle keeps its colour: stickers are not graded


def test_process_refuses_a_bad_recipe(tmp_path: Path) -> None:
    src = save_jpeg(Image.new("RGB", (200, 100)), tmp_path / "p.jpg")
    recipe = tmp_path / "recipe.json"
    recipe.write_text('{"filter": {"id": "starter/nope"}}')
    done = run(["process", str(src), "--recipe", str(recipe), "--out", str(tmp_path / "o")], clean_env(tmp_path))
    assert done.returncode == 2 and "unknown_pack_item" in done.stderr


def test_doctor_on_embedded_defaults(tmp_path: Path) -> None:
    done = run(["doctor"], clean_env(tmp_path))
    assert done.returncode == 0, done.stdout + done.stderr
    for name in ("ffmpeg", "packs", "database", "broker", "storage"):
        assert any(line.startswith("ok") and name in line for line in done.stdout.splitlines()), done.stdout


def test_doctor_names_what_is_down(tmp_path: Path) -> None:
    env = clean_env(tmp_path) | {"MEDIA_BROKER_URL": f"redis://127.0.0.1:{free_port()}/0"}
    done = run(["doctor"], env)
    assert done.returncode == 1
    assert any(line.startswith("FAIL") and "broker" in line for line in done.stdout.splitlines()), done.stdout


def test_process_renders_a_video_locally(tmp_path: Path) -> None:
    from tests.support.video import make_video, probe, stream

    src = make_video(tmp_path / "clip.mp4", width=320, height=568, seconds=2)
    recipe = tmp_path / "recipe.json"
    recipe.write_text(json.dumps({"filter": {"id": "starter/cool"}, "cover": {"time": 1.0}}))
    out = tmp_path / "out"
    done = run(["process", str(src), "--recipe", str(recipe), "--out", str(out)], clean_env(tmp_path))
    assert done.returncode == 0, done.stderr
    assert (out / "hls" / "master.m3u8").is_file()
    v = stream(probe(out / "320p.mp4"), "video")
    assert v is not None and (v["width"], v["height"]) == (320, 568)
    assert json.loads((out / "result.json").read_text())["source"]["duration"] == 2.0
