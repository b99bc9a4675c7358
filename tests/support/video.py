"""Test videos made with ffmpeg's lavfi sources, and ways to look at what came out."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path
from typing import Any

import numpy as np

FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]


def run(argv: list[str]) -> None:
    subprocess.run(argv, check=True, timeout=300, capture_output=True)


def make_video(path: Path, *, width: int = 480, height: int = 854, seconds: float = 3.0, fps: int = 30,
               audio: str | None = "sine=frequency=440", codec: str = "libx264", pix_fmt: str = "yuv420p",
               video: str | None = None, extra: list[str] | None = None, rotate: int | None = None) -> Path:
    """A test video: ``video`` is a lavfi source (default: four coloured quadrants that show orientation)."""
    source = video or quadrants(width, height, fps)
    argv = [*FFMPEG, "-f", "lavfi", "-i", source]
    if audio:
        argv += ["-f", "lavfi", "-i", audio]
    argv += ["-c:v", codec, "-preset", "ultrafast", "-pix_fmt", pix_fmt, "-colorspace", "bt709",
             "-color_primaries", "bt709", "-color_trc", "bt709"]
    if codec == "libx265":
        argv += ["-tag:v", "hvc1", "-x265-params", "log-level=error"]
    if audio:
        argv += ["-c:a", "aac", "-b:a", "128k", "-ar", "48000"]
    argv += ["-t", f"{seconds:.3f}", *(extra or []), str(path)]
    run(argv)
    if rotate is not None:
        tagged = path.with_name(path.stem + ".rot" + path.suffix)
        run([*FFMPEG, "-i", str(path), "-c", "copy", "-metadata:s:v:0", f"rotate={rotate}", str(tagged)])
        tagged.replace(path)
    return path


def quadrants(width: int, height: int, fps: int) -> str:
    """Red top-left, green top-right, blue bottom-left, white bottom-right, as a lavfi graph."""
    hw, hh = width // 2, height // 2
    return (f"color=c=0x1E28DC:s={width}x{height}:r={fps},"
            f"drawbox=x=0:y=0:w={hw}:h={hh}:c=0xDC1E1E:t=fill,"
            f"drawbox=x={hw}:y=0:w={width - hw}:h={hh}:c=0x1EC828:t=fill,"
            f"drawbox=x={hw}:y={hh}:w={width - hw}:h={height - hh}:c=0xF0F0F0:t=fill")


def probe(path: Path) -> dict[str, Any]:
    out = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
                         check=True, capture_output=True, timeout=60).stdout
    data: dict[str, Any] = json.loads(out)
    return data


def stream(info: dict[str, Any], kind: str) -> dict[str, Any] | None:
    return next((s for s in info["streams"] if s["codec_type"] == kind), None)


def keyframe_times(path: Path) -> list[float]:
    out = subprocess.run(["ffprobe", "-v", "error", "-select_streams", "v:0", "-skip_frame", "nokey",
                          "-show_entries", "frame=pts_time", "-of", "csv=p=0", str(path)],
                         check=True, capture_output=True, timeout=60, text=True).stdout
    return [round(float(x.strip(",")), 3) for x in out.split() if x.strip(",")]


def frame_at(path: Path, t: float, size: tuple[int, int] | None = None) -> np.ndarray[Any, Any]:
    """One decoded frame as RGB (BT.709 limited range, the way players show it)."""
    info = stream(probe(path), "video")
    assert info is not None
    w, h = size or (info["width"], info["height"])
    raw = subprocess.run([*FFMPEG, "-ss", f"{t:.3f}", "-i", str(path), "-frames:v", "1", "-vf",
                          f"scale={w}:{h}:in_color_matrix=bt709:in_range=tv,format=rgb24", "-f", "rawvideo", "-"],
                         check=True, capture_output=True, timeout=60).stdout
    return np.frombuffer(raw, dtype=np.uint8).reshape(h, w, 3)


def audio_samples(path: Path, rate: int = 48000) -> np.ndarray[Any, Any]:
    """The first audio stream as mono float samples."""
    raw = subprocess.run([*FFMPEG, "-i", str(path), "-vn", "-ac", "1", "-ar", str(rate), "-f", "f32le", "-"],
                         check=True, capture_output=True, timeout=60).stdout
    return np.frombuffer(raw, dtype=np.float32)


def band_level_db(samples: np.ndarray[Any, Any], rate: int, frequency: float, start: float, end: float) -> float:
    """Energy (dB) within ±5% of ``frequency`` in [start, end) seconds."""
    chunk = samples[int(start * rate):int(end * rate)].astype(np.float64)
    spectrum = np.abs(np.fft.rfft(chunk * np.hanning(len(chunk)))) ** 2
    freqs = np.fft.rfftfreq(len(chunk), 1 / rate)
    band = (freqs > frequency * 0.95) & (freqs < frequency * 1.05)
    return float(10 * np.log10(spectrum[band].sum() / len(chunk) + 1e-20))


def loudness(path: Path) -> tuple[float, float]:
    """(integrated LUFS, true peak dBTP) from ffmpeg's ebur128."""
    err = subprocess.run(["ffmpeg", "-nostdin", "-hide_banner", "-i", str(path), "-vn", "-af", "ebur128=peak=true",
                          "-f", "null", "-"], capture_output=True, timeout=120, text=True).stderr
    summary = err[err.rfind("Summary:"):]
    integrated = float(summary.split("I:")[1].split("LUFS")[0])
    peak = float(summary.split("Peak:")[1].split("dBFS")[0])
    return integrated, peak
