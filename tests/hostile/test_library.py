"""The defences behind the corpus, checked at the library's entry points where a whole upload adds nothing:
the demuxer and protocol whitelists (with a positive control: without them the canary *is* called), Pillow's
plugin allowlist and pinned guards, header-only facts, and the runner's limits and death with its parent."""

from __future__ import annotations

import io
import subprocess
import sys
import time
from pathlib import Path

import pytest
from PIL import Image, ImageFile, PngImagePlugin

from media_service.errors import CorruptMedia, MediaError, ToolFailed, UnsupportedMediaType
from media_service.ffmpeg.runner import ResourceLimits, run_tool
from media_service.ffmpeg.safety import input_args
from media_service.imaging import decode
from media_service.imaging.sniff import sniff
from media_service.limits import DEFAULT_LIMITS
from media_service.probe import probe_video
from tests.hostile import builders as b
from tests.hostile.conftest import Secret, listening_canary

PLAYLISTS = [b.hls_playlist, b.ffconcat_script, b.hls_behind_ftyp, b.ffconcat_behind_ftyp, b.hls_in_avi]


@pytest.mark.parametrize("kind", ["hls", "ffconcat"])
def test_without_the_whitelists_a_playlist_reads_another_file(tmp_path: Path, kind: str) -> None:
    """Positive control: opened the default way, a playlist named like a video does read another local file
    (here a 64×48 video beside it); opened our way, it reads nothing."""
    other = tmp_path / "other.ts"
    b.ffmpeg("-f", "lavfi", "-i", "testsrc2=s=64x48:r=10", "-t", "1", "-c:v", "libx264", "-f", "mpegts", str(other))
    source = tmp_path / "source"
    source.write_text(f"#EXTM3U\n#EXT-X-TARGETDURATION:10\n#EXTINF:1.0,\n{other}\n#EXT-X-ENDLIST\n" if kind == "hls"
                      else "ffconcat version 1.0\nfile other.ts\n")
    unsafe = subprocess.run(["ffprobe", "-v", "error", "-show_streams", "-of", "json", "-i", str(source)],
                            capture_output=True, timeout=30, text=True).stdout
    assert '"width": 64' in unsafe and '"height": 48' in unsafe, unsafe
    with pytest.raises((UnsupportedMediaType, CorruptMedia)):
        probe_video(source)
    out = subprocess.run(["ffprobe", "-v", "error", *input_args(), "-show_streams", "-of", "json", "-i",
                          str(source)], capture_output=True, timeout=30, text=True)
    assert out.returncode != 0 and '"width"' not in out.stdout
    assert "not on whitelist" in out.stderr, out.stderr


@pytest.mark.parametrize("build", PLAYLISTS, ids=[f.__name__ for f in PLAYLISTS])
def test_playlists_open_nothing_else(tmp_path: Path, secret: Secret, build: b.Builder) -> None:
    """Whatever reaches ffprobe or ffmpeg (even bytes that passed the sniffer) is read with our input
    options: no URL, no other file, only the containers we accept."""
    with listening_canary() as canary:
        path = tmp_path / "source"
        path.write_bytes(build(b.Build(tmp_path, canary.url, secret.path, secret.marker)))
        with pytest.raises((UnsupportedMediaType, CorruptMedia)) as info:
            probe_video(path)
        assert secret.marker not in info.value.message and str(secret.path) not in info.value.message
        out = subprocess.run(["ffmpeg", "-nostdin", "-v", "error", *input_args(), "-i", str(path), "-f", "null", "-"],
                             capture_output=True, timeout=30)
        assert out.returncode != 0
        assert secret.marker.encode() not in out.stdout + out.stderr
        time.sleep(0.3)
        assert canary.hits == []


@pytest.mark.parametrize("build", [b.eps_as_jpeg, b.tiff_as_jpeg, b.svg_as_png, b.html_as_jpeg, b.avi_as_mp4,
                                   b.m4a_as_mp4, b.zero_bytes, b.ffconcat_script, b.hls_in_avi],
                         ids=lambda f: f.__name__)
def test_sniffer_allowlist(tmp_path: Path, secret: Secret, build: b.Builder) -> None:
    data = build(b.Build(tmp_path, "http://127.0.0.1:9", secret.path, secret.marker))
    assert sniff(data[:64]) is None


@pytest.mark.parametrize("build", [b.eps_as_jpeg, b.tiff_as_jpeg], ids=lambda f: f.__name__)
def test_pillow_parses_only_the_accepted_formats(tmp_path: Path, secret: Secret, build: b.Builder) -> None:
    """Even handed bytes directly (no sniffing), Pillow may not fall back to its EPS (Ghostscript) or TIFF
    plugins."""
    data = build(b.Build(tmp_path, "http://127.0.0.1:9", secret.path, secret.marker))
    with pytest.raises(MediaError):
        decode.open_image(io.BytesIO(data))


def test_pillow_guards_are_pinned() -> None:
    assert ImageFile.LOAD_TRUNCATED_IMAGES is False
    assert PngImagePlugin.MAX_TEXT_CHUNK <= 1 << 20 and PngImagePlugin.MAX_TEXT_MEMORY <= 8 << 20
    cap = Image.MAX_IMAGE_PIXELS
    assert cap is not None and cap <= 2 * DEFAULT_LIMITS.max_image_pixels


@pytest.mark.parametrize("fmt", ["PNG", "JPEG", "WEBP", "GIF", "HEIF"])
def test_facts_decode_nothing(fmt: str) -> None:
    """The API reads an upload's facts (and checks its caps) from the header only; no pixel is decoded.
    (Pillow's PNG ``getexif()`` decodes the whole image to look for an eXIf chunk after the pixels.)"""
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    Image.new("RGB", (640, 480), (1, 2, 3)).save(buf, fmt)
    with decode.open_image(io.BytesIO(buf.getvalue())) as img:
        facts = decode.read_facts(img, DEFAULT_LIMITS)
        assert (facts.width, facts.height) == (640, 480)
        assert img._im is None, f"{fmt}: read_facts decoded the image"


def test_runner_cpu_limit_stops_a_busy_tool() -> None:
    started = time.monotonic()
    with pytest.raises(ToolFailed):
        run_tool(["sh", "-c", "while :; do :; done"], timeout=30, limits=ResourceLimits(cpu_seconds=1))
    assert time.monotonic() - started < 10


def test_runner_file_size_limit(tmp_path: Path) -> None:
    with pytest.raises(ToolFailed):
        run_tool(["sh", "-c", f"head -c 8000000 /dev/zero > {tmp_path / 'big'}"], timeout=30,
                 limits=ResourceLimits(file_bytes=1 << 20))
    assert (tmp_path / "big").stat().st_size <= 1 << 20


def test_runner_memory_limit() -> None:
    with pytest.raises(ToolFailed):
        run_tool([sys.executable, "-c", "b = bytearray(600 * 1024 * 1024)"], timeout=30,
                 limits=ResourceLimits(memory_bytes=300 << 20))


def test_celery_time_and_memory_limits_per_queue() -> None:
    """Each queue's task has a soft limit (raised inside the task: the runner kills its tool group and the job
    is recorded as failed) under a hard one (the pool process is killed; its tool dies with it), both above
    the job's own budget; a pool process that grew too big is replaced."""
    from media_service.config import Settings
    from media_service.queue import QUEUE_FOR_KIND, TASK_FOR_KIND, celery_config

    conf = celery_config(Settings(broker_url="redis://127.0.0.1:6379/15"))
    budgets = {"image": DEFAULT_LIMITS.image_job_seconds, "video": DEFAULT_LIMITS.video_job_seconds}
    for kind, task in TASK_FOR_KIND.items():
        assert conf["task_routes"][task]["queue"] == QUEUE_FOR_KIND[kind]
        limits = conf["task_annotations"][task]
        assert budgets[kind] < limits["soft_time_limit"] < limits["time_limit"], (kind, limits)
    assert conf["task_acks_late"] and conf["task_reject_on_worker_lost"] and conf["worker_prefetch_multiplier"] == 1
    assert 0 < conf["worker_max_memory_per_child"] <= 4 * 1024 * 1024


def test_opencv_never_opens_user_files() -> None:
    """OpenCV only ever sees pixels Pillow decoded (face finding): never a path, never a video."""
    import re

    root = Path(__file__).resolve().parents[2] / "media_service"
    opener = re.compile(r"cv2\.(VideoCapture|imread|imdecode|imreadmulti|VideoWriter)\b")
    found = [f"{p.relative_to(root)}:{m.group(0)}" for p in root.rglob("*.py") for m in opener.finditer(p.read_text())]
    assert found == []


def test_ffprobe_argv_and_limits(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """ffprobe: the whitelists come before ``-i`` and the file is a local path; CPU, memory and output are
    capped."""
    import media_service.probe as probe

    seen: dict[str, object] = {}

    def fake_run_tool(argv: list[str], **kw: object) -> object:
        seen["argv"], seen["limits"] = argv, kw.get("limits")
        raise CorruptMedia()

    monkeypatch.setattr(probe, "run_tool", fake_run_tool)
    with pytest.raises(CorruptMedia):
        probe.probe_video(tmp_path / "source", timeout=7)
    argv = seen["argv"]
    assert isinstance(argv, list)
    i = argv.index("-i")
    assert argv[argv.index("-protocol_whitelist") + 1] == "file,pipe" and argv.index("-protocol_whitelist") < i
    assert argv.index("-format_whitelist") < i and "hls" not in argv[argv.index("-format_whitelist") + 1]
    assert "concat" not in argv[argv.index("-format_whitelist") + 1]
    assert argv[i + 1] == str(tmp_path / "source")
    limits = seen["limits"]
    assert isinstance(limits, ResourceLimits)
    assert limits.cpu_seconds == 7 and limits.memory_bytes and limits.file_bytes
