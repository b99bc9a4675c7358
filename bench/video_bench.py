#!/usr/bin/env python3
"""Video pipeline benchmark: ours (``run_video_pipeline``, one ffmpeg graph) against a naive pipeline.

A 60 s 1080×1920 30 fps H.264 phone-like clip (generated here, cached in bench/out/, never downloaded)
goes through the full recipe: 9:16, look ``starter/warm`` at 0.8, two stickers (one from 5 s to 15 s),
music with ducking, fades and loudness normalisation, three rungs (1080/720/480) as MP4 and fMP4 HLS,
poster (WebP + JPEG) and animated WebP preview.

The naive pipeline produces the same outputs the obvious way: one ffmpeg process per edit step, each
writing an x264 CRF 18 intermediate (look, sticker 1, sticker 2, audio mix), then one encode per rung,
then HLS by encoding every rung again with the hls muxer, then poster and preview with their own runs.

Each side runs in a fresh subprocess (peak RSS per side: Python's own and its largest ffmpeg child's);
sides are interleaved ours, naive, ours, naive… The 720p rendition of each side is compared (SSIM, ffmpeg's
``ssim`` filter) with the edited source: our own filter graph rendered at 720p without any lossy encode.
See bench/README.md.

    .venv/bin/python bench/video_bench.py [--repeat N] [--seconds S] [--preset P] [--preset-sweep]
                                          [--attribute] [--sweep-seconds S]
"""

from __future__ import annotations

import argparse
import functools
import json
import os
import platform
import re
import resource
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import date
from pathlib import Path
from typing import Any

# Before any third-party import: what a child's peak RSS starts from (checked against contamination).
_START_MAXRSS_KB = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Linux carries the pre-exec high-water mark of a spawning process into the child's ru_maxrss; the
# parent generated the input (numpy arrays of an 8 MP collage), so a tiny launcher spawns each child.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"

OUT = ROOT / "bench" / "out"
VOUT = OUT / "video"
WIDTH, HEIGHT, FPS = 1080, 1920, 30
DEFAULT_SECONDS = 60
SOURCE_VIDEO_BITRATE = "14M"  # phone-like: iPhone/Android 1080p30 H.264 records at 12–17 Mb/s
SOURCE_AUDIO_BITRATE = "192k"
DEFAULT_NOISE = 5  # ffmpeg noise=alls (temporal); what is left of sensor noise after a phone's ISP
COLLAGE_W, COLLAGE_H = 2160, 3840
GENERATOR_VERSION = 1  # bump when the generated input changes, so the cache is rebuilt
SEED = 20261129

LOOK_INTENSITY = 0.8
RECIPE_TEMPLATE: dict[str, Any] = {
    "aspect": "9:16",
    "filter": {"id": "starter/warm", "intensity": LOOK_INTENSITY},
    "stickers": [
        {"id": "starter/heart", "x": 0.27, "y": 0.18},
        {"id": "starter/star", "x": 0.72, "y": 0.74, "start": 5.0, "end": 15.0},
    ],
    "music": {"id": None, "offset": 3.0, "volume": 0.8, "original_volume": 1.0, "duck": True,
              "fade_in": 1.5, "fade_out": 2.0},
    "cover": {"time": 4.2},
}

TARGET_WALL_RATIO = 0.4
TARGET_REALTIME = 1.3
TARGET_SSIM = 0.95
TARGET_PEAK_MB = 800.0
SWEEP_PRESETS = ("superfast", "veryfast", "faster")
NAIVE_INTERMEDIATE_CRF = 18

SPEECH = (
    "Good morning everyone. I am walking along the river this morning, and the light is really beautiful "
    "today. Look at the colours on the water, and those old buildings on the other side. We stopped for a "
    "coffee at the small place near the bridge, the one with the blue chairs. The cat was sleeping in the "
    "window again. Tomorrow we will take the early train to the mountains, so I wanted to record this before "
    "we leave. If you have been here, tell me where we should eat tonight. The market closes at six, and the "
    "museum is free on Sundays. I think the best view is from the top of the hill, but it is a long climb. "
    "Anyway, thank you for watching, and see you in the next note. One more thing: the bakery on the corner "
    "has the best bread in town, and they open at seven. We will try to get there before the crowds. The "
    "weather should be warm all week, so pack light and bring a hat.\n"
)


def _ffmpeg(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-y", "-v", "error", *args], cwd=cwd,
                          capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"ffmpeg failed ({proc.returncode}): {' '.join(args)}\n{proc.stderr[-4000:]}")
    return proc


def ffprobe(path: Path) -> dict[str, Any]:
    proc = subprocess.run(["ffprobe", "-v", "error", "-show_format", "-show_streams", "-of", "json", str(path)],
                          capture_output=True, text=True, check=True)
    data: dict[str, Any] = json.loads(proc.stdout)
    return data


# --------------------------------------------------------------------------------------------- input


def _pink_noise(rng: Any, h: int, w: int) -> Any:
    """Zero-mean, unit-std noise with a 1/f amplitude spectrum (the statistics of natural images)."""
    import numpy as np

    spectrum = np.fft.rfft2(rng.standard_normal((h, w), dtype=np.float32))
    fy = np.fft.fftfreq(h)[:, None].astype(np.float32)
    fx = np.fft.rfftfreq(w)[None, :].astype(np.float32)
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    spectrum /= f
    spectrum[0, 0] = 0
    out = np.fft.irfft2(spectrum, s=(h, w)).astype(np.float32)
    return out / out.std()


def make_collage(path: Path) -> None:
    """A 2160×3840 (9:16) collage of scikit-image's sample photos upscaled 2–7×, with real texture
    (gravel/grass/brick at 1:1) and 1/f detail, so that a pan over it encodes like camera footage."""
    import numpy as np
    from PIL import Image
    from skimage import data as samples

    rng = np.random.default_rng(SEED)
    h, w = COLLAGE_H, COLLAGE_W
    canvas = np.zeros((h, w, 3), np.float32)
    photos = [samples.astronaut(), samples.coffee(), samples.chelsea(), samples.rocket(),
              samples.immunohistochemistry(), samples.retina(), samples.hubble_deep_field(),
              samples.coffee()[:, ::-1]]
    rows, cols = 4, 2
    th, tw = h // rows, w // cols
    for i, arr in enumerate(photos):
        r, c = divmod(i, cols)
        tile = Image.fromarray(np.ascontiguousarray(arr))
        scale = max(tw / tile.width, th / tile.height)
        tile = tile.resize((round(tile.width * scale) + 1, round(tile.height * scale) + 1),
                           Image.Resampling.BICUBIC)
        left, top = (tile.width - tw) // 2, (tile.height - th) // 2
        canvas[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = np.asarray(
            tile.crop((left, top, left + tw, top + th)), np.float32)
    textures = [np.asarray(t(), np.float32) for t in (samples.gravel, samples.grass, samples.brick)]
    detail = np.zeros((h, w), np.float32)
    for k, tex in enumerate(textures):
        tex = (tex - tex.mean()) / tex.std()
        tiled = np.tile(tex, (h // tex.shape[0] + 1, w // tex.shape[1] + 1))[:h, :w]
        band = (np.arange(h)[:, None] * 3 // h == k).astype(np.float32)
        detail += tiled * (0.35 + 0.65 * band)
    detail = 0.6 * detail + _pink_noise(rng, h, w)
    canvas *= (1.0 + 0.06 * detail)[..., None]
    canvas += 5.0 * detail[..., None]
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    canvas *= (0.92 + 0.16 * (xx / w) * (1 - yy / h))[..., None]  # light falloff
    Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8)).save(path, "PNG", compress_level=1)


def make_source(seconds: int, noise: float) -> dict[str, Any]:
    """The phone-like clip, cached in bench/out/ by its parameters.

    Video: a slow hand-held pan and zoom (``zoompan``, zoom 1.3–1.8 over the 2160×3840 collage, a little
    shake) with temporal sensor noise, H.264 High, yuv420p, BT.709 tagged, 14 Mb/s, GOP 1 s, no B-frames
    (as phone hardware encoders write it). Audio: flite TTS speech gated 1.5 s on / 1.5 s off (speech
    bursts for the ducking to react to) over faint pink room noise, AAC 48 kHz stereo."""
    VOUT.mkdir(parents=True, exist_ok=True)
    name = f"input_{seconds}s_n{noise:g}.mp4"
    path = VOUT / name
    meta_path = path.with_suffix(".json")
    params = {"generator": GENERATOR_VERSION, "seconds": seconds, "noise": noise, "size": [WIDTH, HEIGHT],
              "fps": FPS, "video_bitrate": SOURCE_VIDEO_BITRATE}
    if path.exists() and meta_path.exists():
        meta: dict[str, Any] = json.loads(meta_path.read_text())
        if meta.get("params") == params:
            meta["cached"] = True
            return meta
    t0 = time.perf_counter()
    collage = VOUT / f"collage_v{GENERATOR_VERSION}.png"
    if not collage.exists():
        make_collage(collage)
    speech_txt = VOUT / "speech.txt"
    speech_txt.write_text(SPEECH)
    speech = VOUT / "speech.wav"
    _ffmpeg("-f", "lavfi", "-i", "flite=textfile=speech.txt:voice=slt", str(speech), cwd=VOUT)
    t = f"(on/{FPS})"
    zoom = f"1.55+0.25*sin(2*PI*{t}/40)"
    x = f"(iw-iw/zoom)*(0.5+0.5*sin(2*PI*{t}/23))+8*sin({t}*7.3)"
    y = f"(ih-ih/zoom)*(0.5-0.5*cos(2*PI*{t}/60))+6*sin({t}*5.1)"
    graph = (
        "[0:v]scale=out_color_matrix=bt709:out_range=tv,format=yuv420p,loop=loop=-1:size=1:start=0,"
        f"setpts=N/{FPS}/TB,zoompan=z='{zoom}':x='{x}':y='{y}':d=1:s={WIDTH}x{HEIGHT}:fps={FPS},"
        f"noise=alls={noise:g}:allf=t,format=yuv420p[v];"
        "[1:a]aresample=48000,volume='if(lt(mod(t,3),1.5),1,0)':eval=frame,pan=stereo|c0=c0|c1=c0[sp];"
        "[2:a]aformat=channel_layouts=stereo[room];"
        "[sp][room]amix=inputs=2:duration=first:normalize=0[a]")
    tmp = path.with_suffix(".tmp.mp4")
    _ffmpeg("-i", collage.name, "-stream_loop", "-1", "-i", speech.name,
            "-f", "lavfi", "-i", f"anoisesrc=color=pink:amplitude=0.015:r=48000:seed={SEED % 1000}",
            "-filter_complex", graph, "-map", "[v]", "-map", "[a]", "-t", str(seconds),
            "-c:v", "libx264", "-preset", "faster", "-profile:v", "high", "-b:v", SOURCE_VIDEO_BITRATE,
            "-maxrate", "16M", "-bufsize", "16M", "-g", str(FPS), "-bf", "0", "-pix_fmt", "yuv420p",
            "-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv",
            "-c:a", "aac", "-b:a", SOURCE_AUDIO_BITRATE, "-ar", "48000", "-ac", "2", tmp.name, cwd=VOUT)
    tmp.replace(path)
    probe = ffprobe(path)
    v = next(s for s in probe["streams"] if s["codec_type"] == "video")
    a = next(s for s in probe["streams"] if s["codec_type"] == "audio")
    meta = {"params": params, "path": str(path), "bytes": path.stat().st_size,
            "generated_s": round(time.perf_counter() - t0, 1),
            "video": {k: v.get(k) for k in ("codec_name", "profile", "width", "height", "pix_fmt", "color_space",
                                            "color_transfer", "color_primaries", "avg_frame_rate", "bit_rate",
                                            "nb_frames")},
            "audio": {k: a.get(k) for k in ("codec_name", "sample_rate", "channels", "bit_rate")},
            "duration": float(probe["format"]["duration"])}
    meta_path.write_text(json.dumps(meta, indent=2))
    meta["cached"] = False
    return meta


# --------------------------------------------------------------------------------------------- packs


def _write_music_pack(root: Path) -> Path:
    """A 30 s stereo Ogg Vorbis music-like track (a four-chord pad, kick and hi-hat) in the docs/packs.md
    music-pack format, for when the repo's ``music/`` packs give no track."""
    pack = root / "benchtmp"
    track = pack / "groove.ogg"
    if track.exists() and (pack / "pack.toml").exists():
        return root
    pack.mkdir(parents=True, exist_ok=True)
    ratio = "if(lt(mod(t,8),2),1,if(lt(mod(t,8),4),0.8409,if(lt(mod(t,8),6),0.6674,0.7492)))"
    root_hz = f"(130.81*{ratio})"

    def channel(detune: float, top: float, seed: int) -> str:
        return (f"0.13*(sin(2*PI*{detune}*{root_hz}*t)+0.8*sin(2*PI*1.2599*{root_hz}*t)"
                f"+0.7*sin(2*PI*{top}*{root_hz}*t))+0.45*sin(2*PI*55*t)*exp(-10*mod(t,0.5))"
                f"+0.06*(2*random({seed})-1)*exp(-50*mod(t+0.25,0.5))")

    _ffmpeg("-f", "lavfi", "-i", f"aevalsrc=exprs='{channel(1.0, 1.4983, 0)}|{channel(1.003, 2.0, 1)}':s=48000:d=30",
            "-c:a", "libvorbis", "-q:a", "4", str(track))
    (pack / "pack.toml").write_text(
        '[pack]\nid = "benchtmp"\nversion = "1.0.0"\ntitle = { en = "Bench music", zh = "测试音乐" }\n'
        'author = "video_bench"\nlicense = "CC0-1.0"\n\n[[tracks]]\nid = "groove"\n'
        'title = { en = "Groove", zh = "律动" }\nartist = "video_bench"\nfile = "groove.ogg"\nlicense = "CC0-1.0"\n'
        'source = "Synthesised by bench/video_bench.py (ffmpeg aevalsrc), Ogg Vorbis q4"\n', encoding="utf-8")
    return root


def resolve_packs() -> dict[str, Any]:
    """The repo's starter look and stickers; music from the repo's ``music/`` packs when they load and
    hold a track, else a generated track in a temporary pack (bench/out/video/music/)."""
    from media_service.errors import PackError
    from media_service.packs import load_registry

    filter_roots, sticker_roots = [ROOT / "filters"], [ROOT / "stickers"]
    registry = load_registry(filter_roots, sticker_roots)
    missing = [i for i in ("starter/heart", "starter/star") if not registry.has_sticker(i)]
    if not registry.has_look("starter/warm") or missing:
        raise SystemExit("the starter packs lack starter/warm, starter/heart or starter/star")
    music_roots, note = [ROOT / "music"], "repo music packs"
    tracks: dict[str, Any] = {}
    try:
        tracks = load_registry([], [], music_roots).tracks
    except PackError as exc:
        note = f"repo music packs do not load ({exc}); generated track"
    if not tracks:
        if note == "repo music packs":
            note = "no track in music/; generated track"
        music_roots = [_write_music_pack(VOUT / "music")]
        tracks = load_registry([], [], music_roots).tracks
    # The longest track that is at least 30 s, preferring the starter pack's.
    track_id = sorted(tracks, key=lambda t: (not t.startswith("starter/"), tracks[t].duration < 30,
                                             -tracks[t].duration, t))[0]
    recipe = json.loads(json.dumps(RECIPE_TEMPLATE))
    recipe["music"]["id"] = track_id
    return {"filter_roots": [str(p) for p in filter_roots], "sticker_roots": [str(p) for p in sticker_roots],
            "music_roots": [str(p) for p in music_roots], "note": note, "recipe": recipe,
            "track": {"id": track_id, "duration": round(tracks[track_id].duration, 2),
                      "path": str(tracks[track_id].path)}}


def _registry(config: dict[str, Any]) -> Any:
    from media_service.packs import load_registry

    return load_registry([Path(p) for p in config["filter_roots"]], [Path(p) for p in config["sticker_roots"]],
                         [Path(p) for p in config["music_roots"]])


# ------------------------------------------------------------------------------------ measurement


def _rusage() -> dict[str, float]:
    s, c = resource.getrusage(resource.RUSAGE_SELF), resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"self_cpu": s.ru_utime + s.ru_stime, "children_cpu": c.ru_utime + c.ru_stime,
            "self_maxrss_mb": s.ru_maxrss / 1024.0, "children_maxrss_mb": c.ru_maxrss / 1024.0}


def _warm_page_cache(path: Path) -> None:
    """The input in the page cache before anything is timed, read in chunks (holding the whole 100 MB
    file would show up in Python's peak RSS and, through fork, in every ffmpeg child's)."""
    with open(path, "rb") as f:
        while f.read(1 << 20):
            pass


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


class Stages:
    """Wall and CPU (this process + its waited-for children) per named stage."""

    def __init__(self) -> None:
        self.data: dict[str, dict[str, float]] = {}

    def run(self, name: str, fn: Callable[[], Any]) -> Any:
        before, t0 = _rusage(), time.perf_counter()
        try:
            return fn()
        finally:
            wall, after = time.perf_counter() - t0, _rusage()
            entry = self.data.setdefault(name, {"wall_s": 0.0, "cpu_s": 0.0, "ffmpeg_cpu_s": 0.0})
            entry["wall_s"] += wall
            entry["ffmpeg_cpu_s"] += after["children_cpu"] - before["children_cpu"]
            entry["cpu_s"] += after["self_cpu"] - before["self_cpu"] + after["children_cpu"] - before["children_cpu"]


def _describe_outputs(workdir: Path, rungs: list[Any]) -> dict[str, Any]:
    """What a side wrote: per rung the MP4's size/bitrates and its HLS variant; poster and preview."""
    out: dict[str, Any] = {"rungs": {}, "files": {}}
    for r in rungs:
        mp4 = workdir / f"{r.name}.mp4"
        probe = ffprobe(mp4)
        v = next(s for s in probe["streams"] if s["codec_type"] == "video")
        a = [s for s in probe["streams"] if s["codec_type"] == "audio"]
        playlist = workdir / "hls" / r.name / "index.m3u8"
        segments = sorted((workdir / "hls" / r.name).glob("*.m4s"))
        hls_bytes = sum(p.stat().st_size for p in (workdir / "hls" / r.name).iterdir() if p.is_file())
        out["rungs"][r.name] = {
            "width": v["width"], "height": v["height"], "duration": float(probe["format"]["duration"]),
            "bytes": mp4.stat().st_size, "bitrate": int(probe["format"].get("bit_rate", 0)),
            "video_bitrate": int(v.get("bit_rate", 0)), "audio_bitrate": int(a[0].get("bit_rate", 0)) if a else 0,
            "profile": v.get("profile"), "pix_fmt": v.get("pix_fmt"), "color_space": v.get("color_space"),
            "hls_playlist": playlist.exists(), "hls_segments": len(segments), "hls_bytes": hls_bytes,
        }
    for name in ("poster.webp", "poster.jpg", "preview.webp"):
        p = workdir / name
        if p.exists():
            from PIL import Image

            with Image.open(p) as img:
                out["files"][name] = {"bytes": p.stat().st_size, "width": img.width, "height": img.height,
                                      "frames": getattr(img, "n_frames", 1)}
    out["files"]["hls/master.m3u8"] = {"exists": (workdir / "hls" / "master.m3u8").exists()}
    return out


def split_preset(spec: str) -> tuple[str, str | None]:
    """An x264 setting for ours: ``"veryfast"`` → the preset with the pipeline's own per-rung -x264-params
    (``params`` None); ``"veryfast:"`` → the plain preset (``""``); ``"superfast:mbtree=1:rc-lookahead=10"`` →
    the preset with those -x264-params on every rung instead of the pipeline's."""
    preset, sep, params = spec.partition(":")
    return preset, params if sep else None


def child_ours(config: dict[str, Any], workdir: Path, preset_spec: str, threads: int, pieces: int = 0
               ) -> dict[str, Any]:
    """As jobs._render_video: the source copied into a private workdir as ``source``, probed, then
    ``pieces.render_video`` with the worker's default (``pieces`` 0: one piece per CPU of this process), which
    runs ``run_video_pipeline`` for one piece. Steps are wrapped (same names) to add their CPU to job.timings'
    wall times; with several pieces at once only the join is (the parts run in threads)."""
    import media_service.pipeline.pieces as pieces_mod
    import media_service.pipeline.video as video
    from media_service.limits import DEFAULT_LIMITS
    from media_service.probe import probe_video
    from media_service.recipe import output_window, recipe_from_dict

    registry = _registry(config)
    recipe = recipe_from_dict(config["recipe"])
    source = Path(config["input"])
    _warm_page_cache(source)
    workdir.mkdir(parents=True, exist_ok=True)
    stages = Stages()
    stages.run("copy_source", lambda: video.prepare_workdir(source, workdir))
    setup_rss = _rss_now_mb()

    def wrap(fn: Callable[[Any], None]) -> Callable[[Any], None]:
        @functools.wraps(fn)
        def timed(job: Any) -> None:
            stages.run(fn.__name__, lambda: fn(job))

        return timed

    preset, params = split_preset(preset_spec)
    n_pieces = pieces or pieces_mod.cores_available()
    t0 = time.perf_counter()
    facts = stages.run("probe", lambda: probe_video(workdir / "source"))
    _, duration = output_window(recipe, facts.duration, DEFAULT_LIMITS.max_video_seconds)
    if pieces_mod.pieces_for(duration, n_pieces) > 1:
        if (preset, params, threads) != (video.X264_PRESET, None, 0):
            raise SystemExit("--preset/--threads/--preset-sweep measure one pass: add --pieces 1")
        join = pieces_mod.join_segments  # type: ignore[attr-defined]

        def timed_join(*a: Any, **k: Any) -> Any:
            return stages.run("join", lambda: join(*a, **k))

        pieces_mod.join_segments = timed_join  # type: ignore[attr-defined]
        job = pieces_mod.render_video(workdir / "source", facts, recipe, registry, workdir, pieces=n_pieces)
        wall = time.perf_counter() - t0
        stages.data["parts"] = {"wall_s": job.timings["parts"], "cpu_s": float("nan"), "ffmpeg_cpu_s": float("nan")}
    else:
        video.PLAN_STEPS = [wrap(s) for s in video.PLAN_STEPS]
        video.encode = wrap(video.encode)
        video.collect = wrap(video.collect)
        job = video.VideoJob(source=workdir / "source", facts=facts, recipe=recipe, registry=registry,
                             workdir=workdir, x264_preset=preset, threads=threads)
        if params is not None and hasattr(job, "x264_params"):
            job.x264_params = {short: params for short in video.RATE_CONTROL} if params else {}
        video.run_video_pipeline(job)
        wall = time.perf_counter() - t0
    return {"wall_s": wall, "stages": stages.data, "pieces": pieces_mod.pieces_for(duration, n_pieces),
            "timings": dict(job.timings), "argv": job.argv,
            "setup_rss_mb": setup_rss, "outputs": _describe_outputs(workdir, job.rungs),
            "rungs": [[r.name, r.width, r.height] for r in job.rungs], "loudness": job.loudness,
            "placeholder": job.placeholder, "hls": {"variants": job.hls.get("variants")},
            "settings": {"x264_preset": job.x264_preset, "x264_params": {
                str(k): v for k, v in getattr(job, "x264_params", {}).items()}, "threads": job.threads,
                         "crf_maxrate": {
                str(k): v for k, v in video.RATE_CONTROL.items()}, "gop_s": video.GOP_SECONDS}}


def _x264_args(preset_spec: str, crf: int, maxrate: int | None, gop: int, gop_seconds: float = 2) -> list[str]:
    """Our rate control and GOP for a rung (``maxrate``), or a plain CRF for a naive intermediate."""
    preset, params = split_preset(preset_spec)
    args = ["-c:v", "libx264", "-preset", preset, "-profile:v", "high", "-crf", str(crf), "-pix_fmt", "yuv420p"]
    if params:
        args += ["-x264-params", params]
    if maxrate is not None:
        args += ["-maxrate", f"{maxrate}k", "-bufsize", f"{maxrate * 2}k", "-g", str(gop), "-keyint_min", str(gop),
                 "-sc_threshold", "0", "-force_key_frames", f"expr:gte(t,n_forced*{gop_seconds:g})"]
    return args


def naive_pipeline(config: dict[str, Any], workdir: Path, preset: str, stages: Stages) -> dict[str, Any]:
    """Same outputs, the obvious way: a separate ffmpeg process per step, each writing a file."""
    from PIL import Image

    import media_service.pipeline.video as video
    from media_service.ffmpeg.hls import Variant, avc_codec_from_mp4, master_playlist, segment_stats
    from media_service.imaging.encode import encode_jpeg, encode_webp
    from media_service.imaging.overlay import PlacedSticker, render_sticker
    from media_service.imaging.placeholder import blurhash, dominant_color
    from media_service.recipe import recipe_from_dict

    registry = _registry(config)
    recipe = recipe_from_dict(config["recipe"])
    source = Path(config["input"])

    def probe() -> tuple[int, int, float]:
        p = ffprobe(source)
        v = next(s for s in p["streams"] if s["codec_type"] == "video")
        return int(v["width"]), int(v["height"]), float(p["format"]["duration"])

    width, height, duration = stages.run("probe", probe)
    rungs = video.video_ladder(width, height)
    gop = FPS * video.GOP_SECONDS
    inter = [*_x264_args(preset, NAIVE_INTERMEDIATE_CRF, None, gop), "-c:a", "copy"]
    out_audio = ["-c:a", "aac", "-b:a", video.AUDIO_BITRATE, "-ar", "48000", "-ac", "2"]
    tags = ["-colorspace", "bt709", "-color_primaries", "bt709", "-color_trc", "bt709", "-color_range", "tv"]

    def look() -> None:
        assert recipe.filter is not None
        lut = registry.look_lut(recipe.filter.id, recipe.filter.intensity)
        rows = "\n".join(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in lut.table.reshape(-1, 3))
        (workdir / "look.cube").write_text(f"LUT_3D_SIZE {lut.size}\n{rows}\n")
        _ffmpeg("-i", str(source), "-vf", "lut3d=file=look.cube:interp=trilinear", *inter, "s1_look.mp4", cwd=workdir)

    def sticker(i: int, src: str, dst: str) -> None:
        s = recipe.stickers[i]
        placed = PlacedSticker(registry.sticker_image(s.id), s.x, s.y,
                               s.scale if s.scale is not None else registry.stickers[s.id].scale, s.rotation,
                               s.opacity)
        art, (left, top) = render_sticker(placed, width, height)
        art.save(workdir / f"sticker{i}.png")
        enable = f":enable='between(t,{s.start or 0:g},{s.end:g})'" if s.end is not None else ""
        _ffmpeg("-i", src, "-i", f"sticker{i}.png", "-filter_complex", f"[0:v][1:v]overlay=x={left}:y={top}{enable}",
                *inter, dst, cwd=workdir)

    def audio() -> None:
        m = recipe.music
        assert m is not None
        track = registry.tracks[m.id]
        mix = (f"[1:a]atrim=duration={duration:.3f},asetpts=N/SR/TB,volume={m.volume},"
               f"afade=t=in:st=0:d={m.fade_in},afade=t=out:st={duration - m.fade_out:.3f}:d={m.fade_out}[m];"
               "[0:a]asplit[o][sc];[m][sc]sidechaincompress=threshold=0.015:ratio=8:attack=15:release=350[md];"
               f"[o][md]amix=inputs=2:duration=first:normalize=0,loudnorm=I={video.LOUDNESS_TARGET}:"
               f"TP={video.TRUE_PEAK_TARGET}:LRA={video.LRA_TARGET}[a]")
        _ffmpeg("-i", "s3_sticker2.mp4", "-stream_loop", "-1", "-ss", f"{m.offset % track.duration:.3f}",
                "-i", str(track.path), "-filter_complex", mix, "-map", "0:v", "-map", "[a]", "-c:v", "copy",
                "-c:a", "aac", "-b:a", "192k", "-ar", "48000", "edit.mp4", cwd=workdir)

    def rung_args(r: Any) -> list[str]:
        crf, maxrate = video.RATE_CONTROL.get(r.short, (23, 5000 * r.short // 1080))
        return ["-vf", f"scale={r.width}:{r.height}", *_x264_args(preset, crf, maxrate, gop, video.GOP_SECONDS),
                *tags, *out_audio]

    def encode_rung(r: Any) -> None:
        _ffmpeg("-i", "edit.mp4", *rung_args(r), "-movflags", "+faststart", f"{r.name}.mp4", cwd=workdir)

    def hls_rung(r: Any) -> None:
        (workdir / "hls" / r.name).mkdir(parents=True, exist_ok=True)
        _ffmpeg("-i", "edit.mp4", *rung_args(r), "-f", "hls", "-hls_time", str(video.GOP_SECONDS),
                "-hls_playlist_type", "vod", "-hls_segment_type", "fmp4", "-hls_flags", "independent_segments",
                "-hls_fmp4_init_filename", "init.mp4", "-hls_segment_filename", f"hls/{r.name}/seg_%03d.m4s",
                f"hls/{r.name}/index.m3u8", cwd=workdir)

    def master() -> None:
        variants = []
        for r in rungs:
            playlist = workdir / "hls" / r.name / "index.m3u8"
            peak, average = segment_stats(playlist)
            codec = avc_codec_from_mp4(workdir / "hls" / r.name / "init.mp4")
            variants.append((Variant(f"{r.name}/index.m3u8", r.width, r.height, float(FPS), codec, "mp4a.40.2"),
                             peak, average))
        (workdir / "hls" / "master.m3u8").write_text(master_playlist(variants))

    cover = recipe.cover.time if recipe.cover else 0.0
    placeholder: dict[str, str] = {}

    def poster() -> None:
        _ffmpeg("-ss", f"{cover:.3f}", "-i", "edit.mp4", "-frames:v", "1", "poster.png", cwd=workdir)
        with Image.open(workdir / "poster.png") as img:
            frame = img.convert("RGB")
        encode_webp(frame, workdir / "poster.webp")
        encode_jpeg(frame, workdir / "poster.jpg")
        small = frame.copy()
        small.thumbnail((256, 256))
        placeholder.update(blurhash=blurhash(small), dominant_color=dominant_color(small))

    def preview() -> None:
        p = video.video_ladder(width, height, rungs=(video.PREVIEW_SHORT_SIDE,))[0]
        start = max(0.0, min(cover, duration - video.PREVIEW_SECONDS))
        _ffmpeg("-ss", f"{start:.3f}", "-t", f"{video.PREVIEW_SECONDS:g}", "-i", "edit.mp4", "-vf",
                f"fps={video.PREVIEW_FPS},scale={p.width}:{p.height}", "-c:v", "libwebp_anim", "-loop", "0",
                "-quality", "60", "-an", "preview.webp", cwd=workdir)

    stages.run("1 look (lut3d trilinear)", look)
    stages.run("2 sticker 1 (overlay)", lambda: sticker(0, "s1_look.mp4", "s2_sticker1.mp4"))
    stages.run("3 sticker 2 (timed overlay)", lambda: sticker(1, "s2_sticker1.mp4", "s3_sticker2.mp4"))
    stages.run("4 music, ducking, loudnorm", audio)
    for r in rungs:
        stages.run(f"5 encode {r.name}", lambda r=r: encode_rung(r))
    for r in rungs:
        stages.run(f"6 HLS {r.name} (re-encode)", lambda r=r: hls_rung(r))
    stages.run("6 HLS master playlist", master)
    stages.run("7 poster (seek + Pillow)", poster)
    stages.run("8 preview (animated WebP)", preview)
    return {"rungs": [[r.name, r.width, r.height] for r in rungs], "placeholder": placeholder,
            "outputs": _describe_outputs(workdir, rungs)}


class TreeRss:
    """The RSS of this process and all its descendants together, sampled every 0.1 s from a thread: with
    several ffmpeg processes at once (pieces), the largest single process (ru_maxrss) is not what the machine
    has to hold."""

    def __init__(self) -> None:
        import threading

        self.peak_mb = 0.0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._run, daemon=True)
        self._thread.start()

    def _run(self) -> None:
        page = os.sysconf("SC_PAGE_SIZE")
        while not self._stop.wait(0.1):
            pids, total = [os.getpid()], 0
            while pids:
                pid = pids.pop()
                try:
                    with open(f"/proc/{pid}/statm") as f:
                        total += int(f.read().split()[1]) * page
                    for task in os.listdir(f"/proc/{pid}/task"):  # children are listed per thread
                        with open(f"/proc/{pid}/task/{task}/children") as f:
                            pids += [int(c) for c in f.read().split()]
                except (FileNotFoundError, ProcessLookupError, ValueError):
                    continue
            self.peak_mb = max(self.peak_mb, total / 2**20)

    def stop(self) -> float:
        self._stop.set()
        self._thread.join()
        return self.peak_mb


def child_main(side: str, config_path: Path, workdir: Path, preset: str, threads: int, pieces: int = 0) -> None:
    """One measured process; JSON on stdout."""
    config = json.loads(config_path.read_text())
    if workdir.exists():
        shutil.rmtree(workdir)
    workdir.mkdir(parents=True)
    tree = TreeRss()
    if side == "ours":
        result = child_ours(config, workdir, preset, threads, pieces)
    else:
        _warm_page_cache(Path(config["input"]))  # as for ours
        stages = Stages()
        setup_rss = _rss_now_mb()
        t0 = time.perf_counter()
        result = naive_pipeline(config, workdir, preset, stages)
        result.update(wall_s=time.perf_counter() - t0, stages=stages.data, setup_rss_mb=setup_rss,
                      settings={"x264_preset": preset, "intermediate_crf": NAIVE_INTERMEDIATE_CRF})
    usage = _rusage()
    result.update(side=side, cpu_s=usage["self_cpu"] + usage["children_cpu"], python_cpu_s=usage["self_cpu"],
                  ffmpeg_cpu_s=usage["children_cpu"], python_peak_rss_mb=usage["self_maxrss_mb"],
                  ffmpeg_peak_rss_mb=usage["children_maxrss_mb"], start_rss_mb=_START_MAXRSS_KB / 1024.0,
                  workdir=str(workdir))
    result["peak_rss_mb"] = max(result["python_peak_rss_mb"], result["ffmpeg_peak_rss_mb"])
    result["tree_peak_rss_mb"] = tree.stop()
    print(json.dumps(result))


# ------------------------------------------------------------------------------------------ parent


@dataclass
class Sample:
    label: str
    runs: list[dict[str, Any]]

    def values(self, key: str) -> list[float]:
        return [float(r[key]) for r in self.runs]

    def median(self, key: str) -> float:
        return statistics.median(self.values(key))

    def stage_median(self, stage: str, key: str = "wall_s") -> float:
        return statistics.median(r["stages"][stage][key] for r in self.runs if stage in r["stages"])


def _cpu_busy_s() -> float:
    """Busy CPU seconds of the whole machine so far (all cores, /proc/stat)."""
    with open("/proc/stat") as f:
        fields = [int(x) for x in f.readline().split()[1:]]
    idle = fields[3] + fields[4]  # idle + iowait
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def speed_probe() -> float:
    """CPU seconds of a fixed single-threaded job (x264 veryfast, 3 s of 720p testsrc2): this shared
    virtual machine's speed drifts by 10–20 % within an hour, and this shows by how much."""
    proc = subprocess.run(["ffmpeg", "-hide_banner", "-nostdin", "-benchmark", "-f", "lavfi", "-i",
                           "testsrc2=s=1280x720:r=30", "-t", "3", "-c:v", "libx264", "-preset", "veryfast",
                           "-threads", "1", "-f", "null", "-"], capture_output=True, text=True, check=True)
    u = re.search(r"utime=([0-9.]+)s stime=([0-9.]+)s", proc.stderr)
    return float(u.group(1)) + float(u.group(2)) if u else float("nan")


def run_child(label: str, side: str, config_path: Path, workdir: Path, preset: str, threads: int = 0,
              pieces: int = 0) -> dict[str, Any]:
    cmd = [sys.executable, "-c", LAUNCHER, sys.executable, str(Path(__file__).resolve()), "--child", side,
           "--config", str(config_path), "--workdir", str(workdir), "--preset", preset, "--threads", str(threads),
           "--pieces", str(pieces)]
    probe = speed_probe()
    t0, busy0 = time.perf_counter(), _cpu_busy_s()
    proc = subprocess.run(cmd, cwd=ROOT, env={**os.environ, "PYTHONHASHSEED": "0"}, capture_output=True, text=True,
                          check=False)
    busy, elapsed = _cpu_busy_s() - busy0, time.perf_counter() - t0
    if proc.returncode != 0:
        raise SystemExit(f"{label} child failed ({proc.returncode}):\n{proc.stderr[-6000:]}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["start_rss_mb"] > 40:
        raise SystemExit(f"{label}: ru_maxrss was already {result['start_rss_mb']:.0f} MB at interpreter start")
    result["label"] = label
    result["process_s"] = elapsed
    result["speed_probe_cpu_s"] = probe
    # Other processes on the machine meanwhile (this machine is shared): busy CPU not ours, in cores.
    result["other_load_cores"] = max(0.0, busy - result["cpu_s"]) / elapsed
    return result


def rung_node(video: Any, job: Any, node: Any, width: int, height: int) -> Any:
    """The pipeline's own conversion of the edited top-size node to a rung (scale + yuv420p). Its name and
    signature have changed while the graph evolved (``_to_yuv(node, rgb, …)`` → ``_rung(node, …)``)."""
    if hasattr(video, "_rung"):
        return video._rung(node, width, height, job.top)
    if hasattr(video, "_to_yuv"):
        return video._to_yuv(node, getattr(job, "rgb", False), width, height, job.top)
    raise SystemExit("media_service.pipeline.video has neither _rung nor _to_yuv: update rung_node()")


EDIT_STEPS_SKIPPED = ("analyse_loudness", "plan_audio", "plan_outputs")


def plan_edit(config: dict[str, Any], workdir: Path, recipe: dict[str, Any] | None = None, all_steps: bool = False,
              preset: str | None = None) -> Any:
    """Our planning steps up to the edited top-rung video node (no audio, no outputs), in ``workdir``;
    with ``all_steps``, every step (the loudness analysis runs) and ``job.argv`` is the pipeline's."""
    import media_service.pipeline.video as video
    from media_service.probe import probe_video
    from media_service.recipe import recipe_from_dict

    workdir.mkdir(parents=True, exist_ok=True)
    if not (workdir / "source").exists():
        os.symlink(config["input"], workdir / "source")
    job = video.VideoJob(source=workdir / "source", facts=probe_video(workdir / "source"),
                         recipe=recipe_from_dict(recipe or config["recipe"]), registry=_registry(config),
                         workdir=workdir)
    if preset:
        job.x264_preset, params = split_preset(preset)
        if params is not None and hasattr(job, "x264_params"):
            job.x264_params = {short: params for short in video.RATE_CONTROL} if params else {}
    for step in video.PLAN_STEPS:
        if all_steps or step.__name__ not in EDIT_STEPS_SKIPPED:
            step(job)
    return job


def ssim_720(config: dict[str, Any], distorted: dict[str, Path], naive_edit: Path | None, workdir: Path
             ) -> dict[str, dict[str, float]]:
    """SSIM (ffmpeg ``ssim``, yuv420p, All = (4·Y + U + V)/6 averaged over frames) of each 720p rendition
    against the edited source: our own graph (look, stickers) scaled to 720p exactly as the rung is, never
    lossily encoded. One ffmpeg run: one decode and edit of the source, split to every comparison. With
    ``naive_edit``, also the naive 720p against the naive side's own edited intermediate scaled to 720p."""
    import ffmpeg

    import media_service.pipeline.video as video

    job = plan_edit(config, workdir)
    rung = next(r for r in job.rungs if r.short == 720)
    ref = rung_node(video, job, job.video, rung.width, rung.height)
    labels = list(distorted)
    split = ref.split()
    outputs = []
    for i, label in enumerate(labels):
        test = ffmpeg.input(str(distorted[label])).video
        outputs.append(ffmpeg.filter([test, split[i]], "ssim", stats_file=f"ssim_{i}.log").output("-", format="null"))
    if naive_edit is not None and "naive" in distorted:
        own = ffmpeg.input(str(naive_edit)).video.filter("scale", rung.width, rung.height)
        test = ffmpeg.input(str(distorted["naive"])).video
        outputs.append(ffmpeg.filter([test, own], "ssim", stats_file="ssim_own.log").output("-", format="null"))
        labels.append("naive vs its own edit")
    argv = ffmpeg.merge_outputs(*outputs).global_args("-hide_banner", "-nostdin", "-y", "-v", "error").compile()
    t0 = time.perf_counter()
    proc = subprocess.run(argv, cwd=workdir, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"SSIM run failed:\n{proc.stderr[-4000:]}")
    elapsed = time.perf_counter() - t0
    out: dict[str, dict[str, float]] = {}
    expected = round(job.duration * job.fps)
    for i, label in enumerate(labels):
        log = workdir / ("ssim_own.log" if label == "naive vs its own edit" else f"ssim_{i}.log")
        ys, alls = [], []
        for line in log.read_text().splitlines():
            y, a = re.search(r"Y:([0-9.]+)", line), re.search(r"All:([0-9.]+)", line)
            if y and a:
                ys.append(float(y.group(1)))
                alls.append(float(a.group(1)))
        if abs(len(alls) - expected) > 2:
            raise SystemExit(f"SSIM {label}: {len(alls)} frames compared, expected {expected}")
        out[label] = {"all": statistics.fmean(alls), "y": statistics.fmean(ys), "min_all": min(alls),
                      "frames": len(alls)}
    out["_run_s"] = {"all": elapsed, "y": 0.0, "min_all": 0.0, "frames": 0}
    return out


def check_outputs(ours: dict[str, Any], naive: dict[str, Any], seconds: float) -> list[str]:
    problems = []
    if ours["rungs"] != naive["rungs"]:
        problems.append(f"rungs differ: ours {ours['rungs']}, naive {naive['rungs']}")
    for side in (ours, naive):
        o = side["outputs"]
        for name, r in o["rungs"].items():
            if abs(r["duration"] - seconds) > 0.15:
                problems.append(f"{side['side']} {name}.mp4 lasts {r['duration']:.2f} s")
            if not r["hls_playlist"] or r["hls_segments"] < seconds / 2 - 1:
                problems.append(f"{side['side']} {name} HLS: {r['hls_segments']} segments")
            if not r["audio_bitrate"]:
                problems.append(f"{side['side']} {name}.mp4 has no audio")
        for f in ("poster.webp", "poster.jpg", "preview.webp"):
            if f not in o["files"]:
                problems.append(f"{side['side']} wrote no {f}")
        if not o["files"]["hls/master.m3u8"]["exists"]:
            problems.append(f"{side['side']} wrote no master playlist")
        if not side["placeholder"].get("blurhash"):
            problems.append(f"{side['side']} has no blurhash")
    for f in ("poster.webp", "preview.webp"):
        a, b = ours["outputs"]["files"].get(f, {}), naive["outputs"]["files"].get(f, {})
        if (a.get("width"), a.get("height")) != (b.get("width"), b.get("height")):
            problems.append(f"{f}: ours {a.get('width')}×{a.get('height')}, naive {b.get('width')}×{b.get('height')}")
    return problems


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths,
                                                                                          strict=True)))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def _kbps(bps: float) -> str:
    return f"{bps / 1000:.0f}"


# ----------------------------------------------------------------------------------- attribution


def _bench_ffmpeg(argv: list[str], cwd: Path) -> dict[str, float]:
    """Run an ffmpeg argv with ``-benchmark``: wall, user+sys CPU and maxrss as ffmpeg reports them."""
    argv = [argv[0], "-benchmark", *argv[1:]]
    t0, busy0 = time.perf_counter(), _cpu_busy_s()
    proc = subprocess.run(argv, cwd=cwd, capture_output=True, text=True, check=False)
    wall, busy = time.perf_counter() - t0, _cpu_busy_s() - busy0
    if proc.returncode != 0:
        raise SystemExit(f"attribution run failed:\n{' '.join(argv)}\n{proc.stderr[-3000:]}")
    u = re.search(r"bench: utime=([0-9.]+)s stime=([0-9.]+)s rtime=([0-9.]+)s", proc.stderr)
    m = re.search(r"bench: maxrss=([0-9]+)kB", proc.stderr)
    cpu = float(u.group(1)) + float(u.group(2)) if u else float("nan")
    return {"wall_s": wall, "cpu_s": cpu, "other_load_cores": max(0.0, busy - cpu) / wall,
            "maxrss_mb": int(m.group(1)) / 1024.0 if m else float("nan"),
            "warnings": "; ".join(sorted({ln.strip() for ln in proc.stderr.splitlines()
                                          if "Trailing option" in ln or "ignored" in ln.lower()}))}


def attribute(config: dict[str, Any], preset: str, workdir: Path) -> list[dict[str, Any]]:
    """Where our graph's time goes. (1) Edit cost: our planning steps with parts of the recipe removed,
    rendered to the null muxer. (2) Encode cost: the full edit with x264 rungs attached one at a time (our
    rate control). (3) The pipeline's own argv (job.argv, everything: audio, tee MP4 + HLS, poster,
    preview) for the full recipe and with one part removed. All with ffmpeg -benchmark (user+sys CPU)."""
    import ffmpeg

    import media_service.pipeline.video as video

    workdir.mkdir(parents=True, exist_ok=True)
    base = config["recipe"]
    no_edit = {**base, "filter": None, "stickers": []}
    out: list[dict[str, Any]] = []

    def record(label: str, argv: list[str], cwd: Path) -> None:
        r = _bench_ffmpeg(argv, cwd)
        out.append({"variant": label, **r})
        print(f"  {label}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.1f} s CPU, {r['maxrss_mb']:.0f} MB; other load "
              f"{r['other_load_cores']:.2f} cores", flush=True)

    src_opts = [x for k, v in video.input_options().items() for x in (f"-{k}", v)]
    record("decode only (ffmpeg -i source -f null)", ["ffmpeg", "-hide_banner", "-nostdin", "-y", *src_opts, "-i",
                                                      str(config["input"]), "-map", "0:v", "-f", "null", "-"], workdir)
    edit_variants: list[tuple[str, dict[str, Any], str]] = [
        ("edit: none (decode, fps) → null", no_edit, "null"),
        ("edit: 2 stickers only → null", {**base, "filter": None}, "null"),
        ("edit: look only → null", {**base, "stickers": []}, "null"),
        ("edit: look + 2 stickers → null", base, "null"),
        ("full edit → 1080p x264", base, "1080"),
        ("full edit → 720p x264", base, "720"),
        ("full edit → 480p x264", base, "480"),
        ("full edit → 3 rungs x264 (split)", base, "ladder"),
    ]
    for label, recipe, tail in edit_variants:
        wd = workdir / re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        job = plan_edit(config, wd, {**recipe, "music": None}, preset=preset)
        gop = round(job.fps * video.GOP_SECONDS)
        if tail == "null":
            graph = rung_node(video, job, job.video, *job.top).output("-", format="null")
        else:
            rungs = job.rungs if tail == "ladder" else [r for r in job.rungs if str(r.short) == tail]
            split = job.video.split() if len(rungs) > 1 else None
            outs = []
            for i, rung in enumerate(rungs):
                node = split[i] if split is not None else job.video
                crf, maxrate = video.RATE_CONTROL.get(rung.short, (23, 5000))
                x264 = {"x264-params": job.x264_params[rung.short]} if getattr(job, "x264_params", None) else {}
                outs.append(rung_node(video, job, node, rung.width, rung.height).output(
                    f"{rung.name}.mp4", **{"c:v": "libx264", "preset": job.x264_preset, "crf": crf,
                                           "maxrate": f"{maxrate}k", "bufsize": f"{maxrate * 2}k", "g": gop,
                                           "keyint_min": gop, "sc_threshold": 0, "profile:v": "high", **x264}))
            graph = ffmpeg.merge_outputs(*outs)
        record(label, graph.global_args("-hide_banner", "-nostdin", "-y").compile(), wd)
    pipeline_variants: list[tuple[str, dict[str, Any]]] = [
        ("pipeline argv: full recipe", base),
        ("pipeline argv: no music", {**base, "music": None}),
        ("pipeline argv: no look", {**base, "filter": None}),
        ("pipeline argv: no stickers", {**base, "stickers": []}),
        ("pipeline argv: no look, stickers or music", {**no_edit, "music": None}),
    ]
    for label, recipe in pipeline_variants:
        wd = workdir / re.sub(r"[^a-z0-9]+", "-", label.lower()).strip("-")
        job = plan_edit(config, wd, recipe, all_steps=True, preset=preset)
        record(label, job.argv, wd)
    return out


def check_threads_option(config: dict[str, Any], workdir: Path) -> dict[str, Any]:
    """Whether VideoJob.threads reaches ffmpeg: compile our argv and ask ffmpeg what it made of it."""
    import media_service.pipeline.video as video

    job = plan_edit(config, workdir)
    job.threads = 1
    job.loudness = {"input_i": -20.0, "input_tp": -3.0, "input_lra": 5.0, "input_thresh": -30.0}
    video.plan_audio(job)
    video.plan_outputs(job)
    argv = job.argv
    proc = subprocess.run([*argv[:1], "-t", "0.1", *argv[1:]], cwd=workdir, capture_output=True, text=True,
                          check=False, timeout=300)
    trailing = [ln.strip() for ln in proc.stderr.splitlines() if "Trailing option" in ln]
    return {"argv_tail": argv[-8:], "after_outputs": bool(trailing), "ffmpeg_says": trailing[:2]}


# --------------------------------------------------------------------------------------------- main


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=1, help="rounds (ours, naive) to run (default 1)")
    parser.add_argument("--seconds", type=int, default=DEFAULT_SECONDS,
                        help="length of the generated clip (default 60; the issue's figures need 60)")
    parser.add_argument("--preset", default=None, help="x264 preset for both sides (default: the pipeline's)")
    parser.add_argument("--threads", type=int, default=0, help="VideoJob.threads for ours (default 0)")
    parser.add_argument("--also-one-pass", action="store_true",
                        help="each round also runs ours in one pass (--pieces 1), for the pieces' gain")
    parser.add_argument("--pieces", type=int, default=0,
                        help="ours in this many pieces at once (pipeline/pieces.py; default 0: as the worker, one "
                             "per CPU; 1: one pass)")
    parser.add_argument("--noise", type=float, default=DEFAULT_NOISE,
                        help=f"temporal noise of the generated clip (ffmpeg noise alls, default {DEFAULT_NOISE})")
    parser.add_argument("--preset-sweep", action="store_true",
                        help=f"also run ours per x264 preset ({', '.join(SWEEP_PRESETS)}) and recommend one")
    parser.add_argument("--sweep-presets", default=",".join(SWEEP_PRESETS))
    parser.add_argument("--sweep-seconds", type=int, default=None,
                        help="clip length for --preset-sweep and --attribute (default: --seconds)")
    parser.add_argument("--attribute", action="store_true",
                        help="also time our graph with parts removed (edit-only and per-rung encode runs)")
    parser.add_argument("--skip-naive", action="store_true", help="only ours (quick checks; no ratio target)")
    parser.add_argument("--json", type=Path, default=OUT / "video_bench.json")
    parser.add_argument("--child", choices=("ours", "naive"), help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.config, args.workdir, args.preset, args.threads, args.pieces)
        return
    if args.seconds < 16:
        raise SystemExit("--seconds must be at least 16 (the second sticker shows from 5 s to 15 s)")
    VOUT.mkdir(parents=True, exist_ok=True)
    report = run_bench(args)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nJSON: {args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json}")
    if not report["pass"]:
        sys.exit(1)


def _config_for(seconds: int, noise: float, packs: dict[str, Any]) -> tuple[Path, dict[str, Any], dict[str, Any]]:
    source = make_source(seconds, noise)
    config = {"input": source["path"], "seconds": seconds, **packs}
    path = VOUT / f"config_{seconds}s.json"
    path.write_text(json.dumps(config, indent=2))
    return path, config, source


def run_bench(args: argparse.Namespace) -> dict[str, Any]:
    import media_service.pipeline.video as video

    preset = args.preset or video.X264_PRESET
    packs = resolve_packs()
    t0 = time.perf_counter()
    config_path, config, source = _config_for(args.seconds, args.noise, packs)
    v = source["video"]
    print(f"input: {v['width']}×{v['height']} {v['avg_frame_rate']} fps H.264 {v['profile']} {v['pix_fmt']} "
          f"{v['color_space']}, {int(v['bit_rate']) / 1e6:.1f} Mb/s, {args.seconds} s, AAC "
          f"{source['audio']['sample_rate']} Hz {source['audio']['channels']} ch; {source['bytes'] / 1e6:.0f} MB; "
          + ("cached" if source["cached"] else f"generated in {time.perf_counter() - t0:.0f} s"))
    print(f"recipe: 9:16, look starter/warm @ {LOOK_INTENSITY}, stickers starter/heart + starter/star (5–15 s), "
          f"music {packs['track']['id']} ({packs['note']}; {packs['track']['duration']:.0f} s) offset 3, "
          "duck, fades, cover 4.2 s")
    ours_params = getattr(video, "X264_PARAMS", {}) if split_preset(preset)[1] is None else {}
    print(f"x264 preset {preset} on both sides (naive intermediates CRF {NAIVE_INTERMEDIATE_CRF}); ours adds "
          f"-x264-params {ours_params or 'none'}; ours threads "
          f"{args.threads}; {os.cpu_count()} CPUs; {args.repeat} round(s), interleaved ours, naive\n")

    ours = Sample("ours", [])
    naive = Sample("naive", [])
    one_pass = Sample("ours, one pass", [])
    for i in range(args.repeat):
        ours.runs.append(run_child("ours", "ours", config_path, VOUT / "ours", preset, args.threads, args.pieces))
        o = ours.runs[-1]
        line = f"  round {i + 1}/{args.repeat}: ours {o['wall_s']:.1f} s wall ({o['cpu_s']:.0f} s CPU, " \
               f"{o['peak_rss_mb']:.0f} MB; other load {o['other_load_cores']:.2f} cores; speed probe " \
               f"{o['speed_probe_cpu_s']:.2f} s)"
        print(line, flush=True)
        if args.also_one_pass:
            one_pass.runs.append(run_child("ours, one pass", "ours", config_path, VOUT / "ours-one-pass", preset,
                                           args.threads, pieces=1))
            r = one_pass.runs[-1]
            print(f"  {' ' * len(f'round {i + 1}/{args.repeat}:')} ours in one pass {r['wall_s']:.1f} s wall "
                  f"({r['cpu_s']:.0f} s CPU, {r['tree_peak_rss_mb']:.0f} MB; other load "
                  f"{r['other_load_cores']:.2f} cores; speed probe {r['speed_probe_cpu_s']:.2f} s)", flush=True)
        if not args.skip_naive:
            naive.runs.append(run_child("naive", "naive", config_path, VOUT / "naive", preset))
            n = naive.runs[-1]
            print(f"  {' ' * len(f'round {i + 1}/{args.repeat}:')} naive {n['wall_s']:.1f} s wall "
                  f"({n['cpu_s']:.0f} s CPU, {n['peak_rss_mb']:.0f} MB; other load {n['other_load_cores']:.2f} cores; "
                  f"speed probe {n['speed_probe_cpu_s']:.2f} s)",
                  flush=True)

    # Preset sweep: ours per preset on the sweep clip (the main run is reused where it is the same).
    sweep_seconds = args.sweep_seconds or args.seconds
    sweep: dict[str, Sample] = {}
    sweep_config = (config_path, config)
    if (args.preset_sweep or args.attribute) and sweep_seconds != args.seconds:
        p, c, _ = _config_for(sweep_seconds, args.noise, packs)
        sweep_config = (p, c)
    if args.preset_sweep:
        print(f"\npreset sweep on the {sweep_seconds} s clip:", flush=True)
        for p in args.sweep_presets.split(","):
            if p == preset and sweep_seconds == args.seconds:
                sweep[p] = ours
            else:
                sweep[p] = Sample(p, [run_child(f"ours {p}", "ours", sweep_config[0], VOUT / f"ours-{_slug(p)}", p,
                                                args.threads, pieces=1)])
            r = sweep[p].runs[-1]
            r["keep_720"] = str(_keep(Path(r["workdir"]) / "720p.mp4", VOUT / f"sweep-{_slug(p)}-720p.mp4"))
            print(f"  {p}: {r['wall_s']:.1f} s wall, {r['cpu_s']:.0f} s CPU, {r['peak_rss_mb']:.0f} MB; other load "
                  f"{r['other_load_cores']:.2f} cores; speed probe {r['speed_probe_cpu_s']:.2f} s", flush=True)

    # Quality: 720p of each side (last round) against the edited source.
    print("\nSSIM of the 720p renditions against the edited source (one ffmpeg run) …", flush=True)
    distorted = {"ours": Path(ours.runs[-1]["workdir"]) / "720p.mp4"}
    naive_edit = None
    if naive.runs:
        distorted["naive"] = Path(naive.runs[-1]["workdir"]) / "720p.mp4"
        naive_edit = Path(naive.runs[-1]["workdir"]) / "edit.mp4"
    if one_pass.runs:
        distorted["ours, one pass"] = Path(one_pass.runs[-1]["workdir"]) / "720p.mp4"
    if sweep and sweep_seconds == args.seconds:
        distorted |= {f"ours {p}": Path(s.runs[-1]["keep_720"]) for p, s in sweep.items() if s is not ours}
    tmp = Path(tempfile.mkdtemp(prefix="video_bench_"))
    try:
        q = ssim_720(config, distorted, naive_edit, tmp / "ssim")
        if sweep and sweep_seconds != args.seconds:
            q |= {f"ours {p}": v for p, v in ssim_720(sweep_config[1], {f"ours {p}": Path(s.runs[-1]["keep_720"])
                                                                        for p, s in sweep.items()}, None,
                                                      tmp / "ssim_sweep").items() if p != "_run_s"}
        if sweep:
            for p, s in sweep.items():
                q[f"ours {p}"] = q["ours"] if s is ours else q[f"ours {p}"]
        threads_check = check_threads_option(config, tmp / "threads")
        attribution = attribute(sweep_config[1], preset, tmp / "attr") if args.attribute else []
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"  ({q['_run_s']['all']:.0f} s)")

    report = make_report(args, preset, source, packs, ours, naive, q, sweep, sweep_seconds, attribution,
                         threads_check)
    if one_pass.runs:
        report["runs"]["ours_one_pass"] = one_pass.runs
        one = {"wall_s": one_pass.median("wall_s"), "cpu_s": one_pass.median("cpu_s"),
               "tree_peak_rss_mb": max(one_pass.values("tree_peak_rss_mb")), "ssim_720": q["ours, one pass"]["all"]}
        report["ours_one_pass"] = one
        print(f"\nOurs in {ours.runs[-1].get('pieces', 1)} pieces against ours in one pass (median): wall "
              f"{ours.median('wall_s'):.1f} s against {one['wall_s']:.1f} s "
              f"({ours.median('wall_s') / one['wall_s']:.2f}×),"
              f" CPU {ours.median('cpu_s'):.0f} s against {one['cpu_s']:.0f} s, peak RSS (all processes) "
              f"{max(ours.values('tree_peak_rss_mb')):.0f} MB against {one['tree_peak_rss_mb']:.0f} MB, 720p SSIM "
              f"{q['ours']['all']:.4f} against {one['ssim_720']:.4f}")
    return report


def _pipeline_version() -> dict[str, Any]:
    """Which pipeline was measured: the commit, and whether video.py had uncommitted edits."""
    def git(*a: str) -> str:
        return subprocess.run(["git", *a], cwd=ROOT, capture_output=True, text=True).stdout.strip()

    return {"commit": git("rev-parse", "--short", "HEAD"),
            "video_py_dirty": bool(git("status", "--porcelain", "media_service/pipeline/video.py"))}


def _slug(text: str) -> str:
    # ":" kept apart ("veryfast:" is not "veryfast"): the sweep's files are named by it.
    return re.sub(r"[^A-Za-z0-9_]+", "-", text.replace(":", "_")).strip("-")


def _keep(src: Path, dst: Path) -> Path:
    shutil.copyfile(src, dst)
    return dst


def make_report(args: argparse.Namespace, preset: str, source: dict[str, Any], packs: dict[str, Any], ours: Sample,
           naive: Sample, q: dict[str, dict[str, float]], sweep: dict[str, Sample], sweep_seconds: int,
           attribution: list[dict[str, Any]], threads_check: dict[str, Any]) -> dict[str, Any]:
    o_last = ours.runs[-1]
    seconds = float(args.seconds)
    print("\nTime and memory (median over rounds; memory: max)")
    rows = []
    keys = [("wall time [s]", "wall_s", statistics.median, "{:.1f}"),
            ("CPU time, all processes [s]", "cpu_s", statistics.median, "{:.1f}"),
            ("  of which ffmpeg [s]", "ffmpeg_cpu_s", statistics.median, "{:.1f}"),
            ("peak RSS, all processes at once [MB]", "tree_peak_rss_mb", max, "{:.0f}"),
            ("peak RSS, largest ffmpeg [MB]", "ffmpeg_peak_rss_mb", max, "{:.0f}"),
            ("peak RSS, Python [MB]", "python_peak_rss_mb", max, "{:.0f}")]
    for label, key, agg, fmt in keys:
        ov = agg(ours.values(key))
        nv = agg(naive.values(key)) if naive.runs else float("nan")
        rows.append([label, fmt.format(ov), fmt.format(nv) if naive.runs else "–",
                     f"{ov / nv:.2f}×" if naive.runs and nv else "–"])
    print_table(rows, ["", "ours", "naive", "ours/naive"])

    print("\nOurs per stage (median; wall, and CPU of Python + ffmpeg children)")
    stage_rows = []
    ours_stages: dict[str, dict[str, float]] = {}
    for name in o_last["stages"]:
        ours_stages[name] = {"wall_s": ours.stage_median(name), "cpu_s": ours.stage_median(name, "cpu_s")}
    for name, v in ours_stages.items():
        if name == "copy_source":
            continue
        known = v["cpu_s"] == v["cpu_s"]  # NaN: the parts of pieces run in threads, not attributable
        stage_rows.append([name, f"{v['wall_s']:.2f}", f"{v['cpu_s']:.2f}" if known else "–",
                           f"{v['cpu_s'] / v['wall_s']:.2f}" if known and v["wall_s"] > 0.05 else ""])
    stage_rows.append(["total (probe + run_video_pipeline)", f"{ours.median('wall_s'):.2f}", "", ""])
    print_table(stage_rows, ["stage", "wall s", "CPU s", "cores"])
    print(f"(copy of the source into the workdir, not counted: {ours_stages['copy_source']['wall_s']:.2f} s)")

    naive_stages: dict[str, dict[str, float]] = {}
    if naive.runs:
        print("\nNaive per stage (median)")
        for name in naive.runs[-1]["stages"]:
            naive_stages[name] = {"wall_s": naive.stage_median(name), "cpu_s": naive.stage_median(name, "cpu_s")}
        print_table([[n, f"{v['wall_s']:.2f}", f"{v['cpu_s']:.2f}"] for n, v in naive_stages.items()]
                    + [["total", f"{naive.median('wall_s'):.2f}", ""]], ["stage", "wall s", "CPU s"])

    print("\nRenditions (last round; bitrate of the whole MP4 / its video stream, kb/s)")
    rows = []
    for name in o_last["outputs"]["rungs"]:
        a = o_last["outputs"]["rungs"][name]
        b = naive.runs[-1]["outputs"]["rungs"][name] if naive.runs else None
        rows.append([name, f"{a['width']}×{a['height']}", f"{_kbps(a['bitrate'])} / {_kbps(a['video_bitrate'])}",
                     f"{_kbps(b['bitrate'])} / {_kbps(b['video_bitrate'])}" if b else "–",
                     f"{a['hls_segments']} / {a['hls_bytes'] / 1e6:.1f} MB",
                     f"{b['hls_segments']} / {b['hls_bytes'] / 1e6:.1f} MB" if b else "–"])
    print_table(rows, ["rung", "size", "ours kb/s", "naive kb/s", "ours HLS segs/bytes", "naive HLS"])
    files = o_last["outputs"]["files"]
    print("ours: " + ", ".join(f"{k} {v['width']}×{v['height']} {v['bytes'] / 1000:.0f} kB"
                               + (f" {v['frames']} frames" if v.get("frames", 1) > 1 else "")
                               for k, v in files.items() if "bytes" in v))

    print("\n720p SSIM against the edited source (our graph at 720p, no lossy encode)")
    rows = []
    labels = [k for k in q if k != "_run_s" and not (k.startswith("ours ") and sweep.get(k[5:]) is ours)]
    for label in sorted(labels, key=lambda k: (k.startswith("ours "), k)):
        side = "naive" if label.startswith("naive") else "ours"
        run = naive.runs[-1] if side == "naive" else o_last
        if label.startswith("ours ") and label[5:] in sweep:
            run = sweep[label[5:]].runs[-1]
        r720 = run["outputs"]["rungs"]["720p"]
        rows.append([label, f"{q[label]['all']:.4f}", f"{q[label]['y']:.4f}", f"{q[label]['min_all']:.4f}",
                     _kbps(r720["video_bitrate"])])
    print_table(rows, ["720p", "SSIM All", "SSIM Y", "worst frame", "video kb/s"])

    problems = check_outputs(o_last, naive.runs[-1], seconds) if naive.runs else []
    wall_ratio = ours.median("wall_s") / naive.median("wall_s") if naive.runs else float("nan")
    realtime = ours.median("wall_s") / seconds
    peak = max(max(ours.values("peak_rss_mb")), max(ours.values("tree_peak_rss_mb")))
    targets = [
        (f"wall ≤ {TARGET_WALL_RATIO}× naive", bool(naive.runs) and wall_ratio <= TARGET_WALL_RATIO,
         f"{wall_ratio:.3f}×" if naive.runs else "not run"),
        (f"wall ≤ {TARGET_REALTIME}× the video's duration ({seconds:.0f} s)", realtime <= TARGET_REALTIME,
         f"{ours.median('wall_s'):.1f} s = {realtime:.2f}×"),
        (f"720p SSIM ≥ {TARGET_SSIM}", q["ours"]["all"] >= TARGET_SSIM,
         f"{q['ours']['all']:.4f} at {_kbps(o_last['outputs']['rungs']['720p']['video_bitrate'])} kb/s"),
        (f"peak memory ≤ {TARGET_PEAK_MB:.0f} MB (all processes at once)", peak <= TARGET_PEAK_MB,
         f"{peak:.0f} MB (largest ffmpeg {max(ours.values('ffmpeg_peak_rss_mb')):.0f}, Python "
         f"{max(ours.values('python_peak_rss_mb')):.0f})"),
        ("same outputs as the naive pipeline", bool(naive.runs) and not problems,
         "; ".join(problems) or ("3 rungs × MP4 + HLS, master, poster ×2, preview, placeholders"
                                 if naive.runs else "not run")),
    ]
    if seconds != DEFAULT_SECONDS:
        print(f"\nNOTE: a {seconds:.0f} s clip; the issue's figures are for {DEFAULT_SECONDS} s")
    print("\nTargets")
    for name, ok, value in targets:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {value}")
    if threads_check.get("after_outputs"):
        print(f"\nNOTE: VideoJob.threads is compiled after the last output ({threads_check['ffmpeg_says'] or ''}); "
              "ffmpeg ignores it")

    sweep_report = None
    if sweep:
        sweep_report = preset_sweep_report(sweep, q, sweep_seconds)
    if attribution:
        print(f"\nAttribution on the {sweep_seconds} s clip (ffmpeg -benchmark; CPU is the robust figure on a "
              "shared machine)")
        print_table([[a["variant"], f"{a['wall_s']:.1f}", f"{a['cpu_s']:.1f}", f"{a['maxrss_mb']:.0f}",
                      f"{a['other_load_cores']:.2f}"] for a in attribution],
                    ["variant", "wall s", "CPU s", "maxrss MB", "other load"])

    return {
        "date": date.today().isoformat(),
        "machine": {"cpus": os.cpu_count(), "platform": platform.platform(), "python": platform.python_version(),
                    "ffmpeg": subprocess.run(["ffmpeg", "-version"], capture_output=True, text=True).stdout
                    .splitlines()[0]},
        "pipeline": _pipeline_version(),
        "input": source, "packs": packs, "seconds": seconds, "repeat": args.repeat, "preset": preset,
        "threads": args.threads,
        "runs": {"ours": ours.runs, "naive": naive.runs},
        "summary": {side: {k: {"median": statistics.median(s.values(k)), "min": min(s.values(k)),
                               "max": max(s.values(k))}
                           for k in ("wall_s", "cpu_s", "ffmpeg_cpu_s", "python_cpu_s", "peak_rss_mb",
                                     "ffmpeg_peak_rss_mb", "python_peak_rss_mb")}
                    for side, s in (("ours", ours), ("naive", naive)) if s.runs},
        "ours_stages": ours_stages, "naive_stages": naive_stages,
        "ssim_720": {k: v for k, v in q.items() if k != "_run_s"},
        "wall_ratio": wall_ratio, "realtime_factor": realtime,
        "targets": {name: {"pass": ok, "value": value} for name, ok, value in targets},
        "preset_sweep": sweep_report, "attribution": attribution, "threads_check": threads_check,
        "pass": all(ok for _, ok, _ in targets),
    }


def preset_sweep_report(sweep: dict[str, Sample], q: dict[str, dict[str, float]], seconds: int) -> dict[str, Any]:
    rows, entries = [], []
    ref = sweep.get("veryfast")
    ref_bytes = sum(r["bytes"] for r in ref.runs[-1]["outputs"]["rungs"].values()) if ref else None
    for p, s in sweep.items():
        run = s.runs[-1]
        rungs = run["outputs"]["rungs"]
        total = sum(r["bytes"] for r in rungs.values())
        entry = {"preset": p, "wall_s": s.median("wall_s"), "encode_s": s.stage_median("encode"),
                 "cpu_s": s.median("cpu_s"), "peak_rss_mb": max(s.values("peak_rss_mb")),
                 "ssim_720": q[f"ours {p}"]["all"], "video_kbps": {n: r["video_bitrate"] / 1000
                                                                   for n, r in rungs.items()},
                 "mp4_bytes_total": total, "bytes_vs_veryfast": total / ref_bytes if ref_bytes else None}
        entry["realtime"] = entry["wall_s"] / seconds
        entry["meets"] = entry["ssim_720"] >= TARGET_SSIM and entry["realtime"] <= TARGET_REALTIME and \
            entry["peak_rss_mb"] <= TARGET_PEAK_MB
        entries.append(entry)
        rows.append([p, f"{entry['wall_s']:.1f}", f"{entry['realtime']:.2f}×", f"{entry['encode_s']:.1f}",
                     f"{entry['peak_rss_mb']:.0f}", f"{entry['ssim_720']:.4f}",
                     " / ".join(f"{v:.0f}" for v in entry["video_kbps"].values()),
                     f"{entry['bytes_vs_veryfast']:.2f}×" if ref_bytes else "–", "yes" if entry["meets"] else "no"])
    print(f"\nx264 preset sweep (ours, {seconds} s clip; one run each)")
    print_table(rows, ["preset", "wall s", "× video", "encode s", "peak MB", "SSIM 720p",
                       "video kb/s 1080/720/480", "MP4 bytes", "targets"])
    ok = [e for e in entries if e["ssim_720"] >= TARGET_SSIM]
    best = min(ok, key=lambda e: e["wall_s"]) if ok else None
    if best:
        print(f"recommendation: {best['preset']} (the fastest preset with 720p SSIM ≥ {TARGET_SSIM}; "
              f"MP4 bytes {best['bytes_vs_veryfast']:.2f}× veryfast's)" if best["bytes_vs_veryfast"] else
              f"recommendation: {best['preset']}")
    else:
        print("recommendation: no preset reaches the SSIM target")
    return {"presets": entries, "recommended": best["preset"] if best else None}


if __name__ == "__main__":
    main()
