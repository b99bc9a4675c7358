#!/usr/bin/env python3
"""Photo pipeline benchmark: ours (``run_image_pipeline``) against a naive Pillow baseline.

One 12 MP JPEG (4000×3000, EXIF orientation 6, Display-P3 ICC profile, GPS EXIF; generated here, never
downloaded) goes through the full recipe: orientation, sRGB, 3:4, a look at 0.8, two stickers (one
rotated), three widths × WebP and JPEG, blurhash and dominant colour.

The baseline produces the same outputs the obvious way: full-size decode, ``exif_transpose``, ICC→sRGB,
centre crop, ``Color3DLUT`` (the same folded table), stickers composited at full size, then for every
width a LANCZOS resize from the full-size edited image, WebP with Pillow's defaults (q80, method 4), JPEG
at our quality, and blurhash/dominant colour through our own functions (they thumbnail internally).

Each measured run is a fresh subprocess (so peak RSS is per side); sides are interleaved A,B,A,B… because
this machine's speed drifts by ±10 %. See bench/README.md.

    .venv/bin/python bench/photo_bench.py [--repeat N] [--webp-sweep]
"""

from __future__ import annotations

import argparse
import functools
import io
import json
import os
import platform
import resource
import shutil
import statistics
import struct
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

# Both sides import numpy and Pillow anyway; nothing heavier (scikit-image, the generator's data) is
# imported at module level, so a child's RSS after imports is its side's own.
import numpy as np  # noqa: E402
from PIL import Image  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

# Linux records the pre-exec memory of a spawned process in its ru_maxrss (with vfork/posix_spawn the
# *parent's* high-water mark), so the parent, which holds the generated 12 MP image, would leak into the
# children's peaks. A tiny launcher process (≈10 MB) spawns each measured child instead.
LAUNCHER = "import subprocess, sys; sys.exit(subprocess.call(sys.argv[1:]))"

OUT = ROOT / "bench" / "out"
SRC_W, SRC_H = 4000, 3000  # as stored; EXIF orientation 6 makes it a 3000×4000 portrait
SOURCE_QUALITY = 92
SEED = 20261129
LOOK_INTENSITY = 0.8
ASPECT = "3:4"

TARGET_CPU_RATIO = 0.35
TARGET_PEAK_MB = 150.0
TARGET_SSIM_DIFF = 0.005
TARGET_BYTES_RATIO = 1.10
SWEEP_METHODS = (0, 1, 2, 3, 4)
SWEEP_QUALITIES = (80, 81, 82, 83)


# --------------------------------------------------------------------------------------------- input


def _s15(v: float) -> bytes:
    return struct.pack(">i", round(v * 65536))


def _xyz_tag(xyz: np.ndarray) -> bytes:
    return b"XYZ \0\0\0\0" + b"".join(_s15(float(v)) for v in xyz)


def display_p3_icc() -> bytes:
    """A Display-P3 ICC v2 matrix/TRC profile, written byte by byte (Pillow's ``createProfile`` only
    makes sRGB, LAB and XYZ). P3 primaries with a D65 white, Bradford-adapted to the D50 PCS (this gives
    Apple's Display P3 colorants to 4 decimals), and the sRGB tone curve as a 1024-entry table."""

    def xyz(x: float, y: float) -> np.ndarray:
        return np.array([x / y, 1.0, (1.0 - x - y) / y])

    primaries = np.stack([xyz(0.680, 0.320), xyz(0.265, 0.690), xyz(0.150, 0.060)], axis=1)
    white = xyz(0.3127, 0.3290)
    rgb_to_xyz = primaries * np.linalg.solve(primaries, white)
    bradford = np.array([[0.8951, 0.2664, -0.1614], [-0.7502, 1.7135, 0.0367], [0.0389, -0.0685, 1.0296]])
    d50 = np.array([0.9642, 1.0, 0.8249])
    adapt = np.linalg.inv(bradford) @ np.diag((bradford @ d50) / (bradford @ white)) @ bradford
    colorants = adapt @ rgb_to_xyz  # columns: red, green, blue (XYZ, D50)

    xs = np.linspace(0.0, 1.0, 1024)
    ys = np.where(xs <= 0.04045, xs / 12.92, ((xs + 0.055) / 1.055) ** 2.4)
    curve = b"curv\0\0\0\0" + struct.pack(">I", len(ys)) + b"".join(struct.pack(">H", round(y * 65535))
                                                                      for y in ys)
    text = b"Display P3 (photo_bench)\0"
    desc = b"desc\0\0\0\0" + struct.pack(">I", len(text)) + text + b"\0" * (4 + 4 + 2 + 1 + 67)
    tags = [(b"desc", desc), (b"cprt", b"text\0\0\0\0CC0\0"), (b"wtpt", _xyz_tag(d50)),
            (b"rXYZ", _xyz_tag(colorants[:, 0])), (b"gXYZ", _xyz_tag(colorants[:, 1])),
            (b"bXYZ", _xyz_tag(colorants[:, 2])), (b"rTRC", curve), (b"gTRC", curve), (b"bTRC", curve)]
    offset = 128 + 4 + 12 * len(tags)
    table, data, placed = b"", b"", {}
    for sig, body in tags:
        if body not in placed:  # the three TRC tags share one curve
            data += b"\0" * (-(offset + len(data)) % 4)
            placed[body] = offset + len(data)
            data += body
        table += sig + struct.pack(">II", placed[body], len(body))
    size = offset + len(data)
    header = (struct.pack(">I", size) + b"lcms" + bytes([2, 0x10, 0, 0]) + b"mntrRGB XYZ "
              + struct.pack(">6H", 2026, 11, 29, 0, 0, 0) + b"acsp" + b"APPL" + b"\0" * 24
              + b"".join(_s15(v) for v in d50) + b"\0" * 48)
    assert len(header) == 128
    return header + struct.pack(">I", len(tags)) + table + data


def _exif(orientation: int) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "BenchCam"
    exif[0x0110] = "BC-12"
    exif[0x0132] = "2026:11:29 10:00:00"
    gps = exif.get_ifd(0x8825)
    gps.update({1: "N", 2: (52.0, 22.0, 12.5), 3: "E", 4: (4.0, 53.0, 30.0), 5: 0, 6: 3.5})
    return exif.tobytes()


def _pink_noise(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Zero-mean, unit-std noise with a 1/f amplitude spectrum (the statistics of natural images)."""
    spectrum = np.fft.rfft2(rng.standard_normal((h, w), dtype=np.float32))
    fy = np.fft.fftfreq(h)[:, None].astype(np.float32)
    fx = np.fft.rfftfreq(w)[None, :].astype(np.float32)
    f = np.sqrt(fy * fy + fx * fx)
    f[0, 0] = 1.0
    spectrum /= f
    spectrum[0, 0] = 0
    out = np.fft.irfft2(spectrum, s=(h, w)).astype(np.float32)
    return out / out.std()


def make_photo(path: Path, icc: bytes, detail_scale: float = 1.0) -> dict[str, Any]:
    """A photo-like 3000×4000 scene (scikit-image's sample photos as a collage at 2.5–5× with real
    texture, 1/f detail, light falloff and sensor noise), stored rotated as 4000×3000 + orientation 6.
    ``detail_scale`` scales the added texture and noise (1.0: the benchmark's scene; 0: clean upscales)."""
    from skimage import data as samples

    rng = np.random.default_rng(SEED)
    h, w = SRC_W, SRC_H  # display orientation: portrait
    canvas = np.zeros((h, w, 3), np.float32)
    photos = [samples.astronaut(), samples.coffee(), samples.chelsea(), samples.rocket(),
              samples.immunohistochemistry(), samples.retina()]
    rows, cols = 3, 2
    th, tw = h // rows, w // cols
    for i, arr in enumerate(photos):
        r, c = divmod(i, cols)
        tile = Image.fromarray(arr)
        scale = max(tw / tile.width, th / tile.height)
        tile = tile.resize((round(tile.width * scale) + 1, round(tile.height * scale) + 1),
                           Image.Resampling.BICUBIC)
        left, top = (tile.width - tw) // 2, (tile.height - th) // 2
        canvas[r * th:(r + 1) * th, c * tw:(c + 1) * tw] = np.asarray(
            tile.crop((left, top, left + tw, top + th)), np.float32)
    # Upscaled samples lack fine detail: add real texture (gravel/grass/brick, tiled at 1:1) and 1/f
    # noise, more in the luminance than in the chroma, as a camera's output has.
    textures = [np.asarray(t(), np.float32) for t in (samples.gravel, samples.grass, samples.brick)]
    detail = np.zeros((h, w), np.float32)
    for k, tex in enumerate(textures):
        tex = (tex - tex.mean()) / tex.std()
        tiled = np.tile(tex, (h // tex.shape[0] + 1, w // tex.shape[1] + 1))[:h, :w]
        band = np.zeros((h, w), np.float32)
        band[:, :] = (np.arange(h)[:, None] * 3 // h == k)
        detail += tiled * (0.35 + 0.65 * band)
    detail = (0.6 * detail + _pink_noise(rng, h, w)) * detail_scale
    canvas *= (1.0 + 0.06 * detail)[..., None]
    canvas += 5.0 * detail[..., None]
    # Light falloff: a diagonal gradient and a vignette.
    yy, xx = np.mgrid[0:h, 0:w].astype(np.float32)
    light = 0.9 + 0.2 * (xx / w) * (1 - yy / h)
    light *= 1.0 - 0.25 * (((xx - w / 2) / w) ** 2 + ((yy - h / 2) / h) ** 2) * 2
    canvas *= light[..., None]
    canvas += rng.normal(0.0, 2.0 * detail_scale, (h, w, 1)).astype(np.float32)  # luma sensor noise
    canvas += rng.normal(0.0, 0.8 * detail_scale, (h, w, 3)).astype(np.float32)  # chroma sensor noise
    display = Image.fromarray(np.clip(canvas + 0.5, 0, 255).astype(np.uint8))
    del canvas, detail, light, xx, yy
    # Orientation 6 means "rotate 90° clockwise to display": store it turned 90° counter-clockwise.
    stored = display.transpose(Image.Transpose.ROTATE_90)
    assert stored.size == (SRC_W, SRC_H)
    stored.save(path, "JPEG", quality=SOURCE_QUALITY, exif=_exif(6), icc_profile=icc)
    return {"path": str(path), "stored_size": list(stored.size), "display_size": list(display.size),
            "bytes": path.stat().st_size, "quality": SOURCE_QUALITY, "orientation": 6,
            "icc": "Display P3 (ICC v2 matrix/TRC, built by photo_bench)", "gps": True,
            "detail_scale": detail_scale}


# --------------------------------------------------------------------------------------------- packs


def _write_temp_packs(root: Path) -> tuple[Path, Path]:
    """A 33³ warm look and two ~512 px RGBA stickers in the docs/packs.md manifest format."""
    from PIL import ImageDraw

    looks, stickers = root / "filters", root / "stickers"
    (looks / "benchtmp" / "luts").mkdir(parents=True)
    (stickers / "benchtmp").mkdir(parents=True)
    n = 33
    axis = np.linspace(0.0, 1.0, n)
    b, g, r = np.meshgrid(axis, axis, axis, indexing="ij")
    curve = lambda v: v + 0.08 * np.sin(np.pi * v) * (v - 0.2)  # noqa: E731 - gentle S-ish lift
    rows = np.stack([np.clip(curve(r) * 1.06 + 0.02, 0, 1), np.clip(curve(g) * 1.01, 0, 1),
                     np.clip(curve(b) * 0.90, 0, 1)], axis=-1).reshape(-1, 3)
    lines = ['TITLE "bench warm"', f"LUT_3D_SIZE {n}"] + [f"{x:.6f} {y:.6f} {z:.6f}" for x, y, z in rows]
    (looks / "benchtmp" / "luts" / "warm.cube").write_text("\n".join(lines) + "\n", encoding="utf-8")
    (looks / "benchtmp" / "pack.toml").write_text(
        '[pack]\nid = "benchtmp"\nversion = "1.0.0"\ntitle = { en = "Bench", zh = "测试" }\nauthor = "bench"\n'
        'license = "CC0-1.0"\n\n[[looks]]\nid = "warm"\ntitle = { en = "Warm", zh = "暖阳" }\n'
        'lut = "luts/warm.cube"\nintensity = 0.8\n', encoding="utf-8")
    for name, colour in (("heart", (255, 59, 92, 255)), ("star", (255, 210, 63, 255))):
        big = Image.new("RGBA", (2048, 2048), (0, 0, 0, 0))
        draw = ImageDraw.Draw(big)
        if name == "heart":
            draw.ellipse((224, 300, 1064, 1140), fill=colour)
            draw.ellipse((984, 300, 1824, 1140), fill=colour)
            draw.polygon([(260, 900), (1024, 1800), (1788, 900)], fill=colour)
        else:
            import math
            pts = [(1024 + (900 if k % 2 == 0 else 380) * math.sin(k * math.pi / 5),
                    1060 - (900 if k % 2 == 0 else 380) * math.cos(k * math.pi / 5)) for k in range(10)]
            draw.polygon(pts, fill=colour, outline=(255, 255, 255, 255), width=40)
        big.resize((512, 512), Image.Resampling.LANCZOS).save(stickers / "benchtmp" / f"{name}.png")
    (stickers / "benchtmp" / "pack.toml").write_text(
        '[pack]\nid = "benchtmp"\nversion = "1.0.0"\ntitle = { en = "Bench", zh = "测试" }\nauthor = "bench"\n'
        'license = "CC0-1.0"\n\n[[stickers]]\nid = "heart"\ntitle = { en = "Heart", zh = "爱心" }\nfile = "heart.png"\n'
        'scale = 0.25\n\n[[stickers]]\nid = "star"\ntitle = { en = "Star", zh = "星星" }\nfile = "star.png"\n'
        'scale = 0.25\n', encoding="utf-8")
    return looks, stickers


def resolve_packs(tmp: Path) -> dict[str, Any]:
    """The repo's starter packs when they hold ``starter/warm`` and two stickers; a temporary pack for
    whatever is missing (or for both when the starter packs do not load)."""
    from media_service.errors import PackError
    from media_service.packs import load_registry

    filter_roots, sticker_roots = [ROOT / "filters"], [ROOT / "stickers"]
    note = "starter packs"
    try:
        registry = load_registry(filter_roots, sticker_roots)
    except PackError as exc:
        note = f"starter packs do not load ({exc}); temporary packs"
        filter_roots, sticker_roots = [], []
        registry = None
    has_look = registry is not None and registry.has_look("starter/warm")
    starter_stickers = sorted(s for s in (registry.stickers if registry else {}) if s.startswith("starter/"))
    if not has_look or len(starter_stickers) < 2:
        tmp_looks, tmp_stickers = _write_temp_packs(tmp)
        if not has_look:
            filter_roots = [*filter_roots, tmp_looks]
        if len(starter_stickers) < 2:
            sticker_roots = [*sticker_roots, tmp_stickers]
        if registry is not None:
            note = "starter packs + temporary " + ("look" if not has_look else "") + (
                " and " if not has_look and len(starter_stickers) < 2 else "") + (
                "stickers" if len(starter_stickers) < 2 else "")
    look = "starter/warm" if has_look else "benchtmp/warm"
    if len(starter_stickers) >= 2:
        preferred = [s for s in ("starter/heart", "starter/star") if s in starter_stickers]
        chosen = (preferred + [s for s in starter_stickers if s not in preferred])[:2]
    else:
        chosen = ["benchtmp/heart", "benchtmp/star"]
    load_registry(filter_roots, sticker_roots)  # the children must not be the first to find a problem
    return {"filter_roots": [str(p) for p in filter_roots], "sticker_roots": [str(p) for p in sticker_roots],
            "note": note, "recipe": {
                "aspect": ASPECT,
                "filter": {"id": look, "intensity": LOOK_INTENSITY},
                "stickers": [
                    {"id": chosen[0], "x": 0.28, "y": 0.22, "scale": 0.30},
                    {"id": chosen[1], "x": 0.70, "y": 0.78, "scale": 0.22, "rotation": 20.0},
                ]}}


# ------------------------------------------------------------------------------------ the two sides


def baseline_pipeline(source: Path, registry: Any, recipe: Any, widths: tuple[int, ...], workdir: Path,
                      srgb: Any, on_resized: Callable[[int, Image.Image], None] | None = None,
                      ) -> dict[str, Any]:
    """The naive Pillow way to the same outputs: every step at full size, every width from full size."""
    from PIL import ImageCms, ImageOps

    from media_service import geometry
    from media_service.imaging.encode import JPEG_QUALITY
    from media_service.imaging.overlay import PlacedSticker, place_stickers
    from media_service.imaging.placeholder import blurhash, dominant_color

    phases: dict[str, float] = {}
    clock = [time.process_time()]

    def mark(name: str) -> None:  # CPU per phase, named like our steps where they correspond
        now = time.process_time()
        phases[name] = phases.get(name, 0.0) + now - clock[0]
        clock[0] = now

    img = Image.open(source)
    img.load()
    mark("decode")
    img = ImageOps.exif_transpose(img)
    mark("orient")
    icc = img.info.get("icc_profile")
    if icc:
        img = ImageCms.profileToProfile(img, ImageCms.ImageCmsProfile(io.BytesIO(icc)), srgb,
                                        renderingIntent=ImageCms.Intent.PERCEPTUAL, outputMode="RGB")
    img = img.convert("RGB") if img.mode != "RGB" else img
    mark("to_srgb")
    box = geometry.aspect_crop(img.width, img.height, recipe.aspect.ratio())  # centre crop
    if box.as_ltrb() != (0, 0, img.width, img.height):
        img = img.crop(box.as_ltrb())
    mark("crop_to_aspect")
    if recipe.filter is not None:
        img = img.filter(registry.look_filter(recipe.filter.id, recipe.filter.intensity))
    mark("apply_filter")
    if recipe.stickers:
        img = place_stickers(img, [
            PlacedSticker(image=registry.sticker_image(s.id), x=s.x, y=s.y,
                          scale=s.scale if s.scale is not None else registry.stickers[s.id].scale,
                          rotation=s.rotation, opacity=s.opacity)
            for s in recipe.stickers])
    mark("stickers")
    renditions = []
    for width in geometry.ladder(img.width, widths):
        height = max(1, round(img.height * width / img.width))
        resized = img.resize((width, height), Image.Resampling.LANCZOS)
        mark("ladder: resize")
        if on_resized is not None:
            on_resized(width, resized)
        resized.save(workdir / f"w{width}.webp", "WEBP")  # Pillow's defaults: quality 80, method 4
        mark("ladder: webp")
        resized.save(workdir / f"w{width}.jpg", "JPEG", quality=JPEG_QUALITY)
        mark("ladder: jpeg")
        for ext in ("webp", "jpg"):
            renditions.append({"name": f"w{width}.{ext}", "width": width, "height": height,
                               "bytes": (workdir / f"w{width}.{ext}").stat().st_size})
    placeholders = {"blurhash": blurhash(img), "dominant_color": dominant_color(img)}
    mark("placeholder")
    return {"renditions": renditions, **placeholders, "step_cpu": phases}


def _maxrss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024.0  # Linux: KiB


def _rss_now_mb() -> float:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE") / 2**20


def _vm_hwm_mb() -> float:
    """The kernel's high-water mark for this process image (a cross-check of ru_maxrss)."""
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) / 1024.0
    return float("nan")


def _cpu_timed(step: Callable[[Any], None], into: dict[str, float]) -> Callable[[Any], None]:
    """The step unchanged (same name, so job.timings keeps its keys), plus its CPU time in ``into``."""

    @functools.wraps(step)
    def timed(job: Any) -> None:
        started = time.process_time()
        step(job)
        into[step.__name__] = time.process_time() - started

    return timed


def child_main(side: str, config_path: Path, workdir: Path, warmup: int, webp_method: int | None) -> None:
    """One measured process: imports, setup, ``warmup`` untimed runs, one timed run; JSON on stdout."""
    config = json.loads(config_path.read_text())
    from media_service.packs import load_registry
    from media_service.recipe import recipe_from_dict

    if side == "ours":
        import media_service.imaging.encode as encode
        from media_service.pipeline.image import IMAGE_STEPS, ImageJob, run_image_pipeline

        if webp_method is not None:
            encode.WEBP_METHOD = webp_method  # read at call time by encode_webp
        settings = {"webp_quality": encode.WEBP_QUALITY, "webp_method": encode.WEBP_METHOD,
                    "jpeg_quality": encode.JPEG_QUALITY}
    else:
        from PIL import ImageCms

        from media_service.imaging.encode import JPEG_QUALITY
        from media_service.limits import IMAGE_WIDTHS

        srgb = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))
        settings = {"webp_quality": 80, "webp_method": 4, "jpeg_quality": JPEG_QUALITY}

    source = Path(config["input"])
    registry = load_registry([Path(p) for p in config["filter_roots"]],
                             [Path(p) for p in config["sticker_roots"]])
    recipe = recipe_from_dict(config["recipe"])
    # A worker is long-lived: the folded look and the decoded stickers are cached in its registry.
    if recipe.filter is not None:
        registry.look_filter(recipe.filter.id, recipe.filter.intensity)
    for s in recipe.stickers:
        registry.sticker_image(s.id)
    source.read_bytes()  # the input is in the page cache before anything is timed
    workdir.mkdir(parents=True, exist_ok=True)
    rss_setup = _maxrss_mb()

    def work() -> dict[str, Any]:
        if side == "ours":
            step_cpu: dict[str, float] = {}
            job = ImageJob(source=source, recipe=recipe, registry=registry, workdir=workdir)
            run_image_pipeline(job, [_cpu_timed(s, step_cpu) for s in IMAGE_STEPS])
            return {"renditions": [{"name": r.name, "width": r.width, "height": r.height, "bytes": r.bytes}
                                   for r in job.renditions],
                    "blurhash": job.placeholder["blurhash"],
                    "dominant_color": job.placeholder["dominant_color"],
                    "timings": dict(job.timings), "step_cpu": step_cpu}
        return baseline_pipeline(source, registry, recipe, IMAGE_WIDTHS, workdir, srgb)

    for _ in range(warmup):
        work()
    cpu0, wall0 = time.process_time(), time.perf_counter()
    result = work()
    cpu, wall = time.process_time() - cpu0, time.perf_counter() - wall0
    result.update(side=side, cpu_s=cpu, wall_s=wall, peak_rss_mb=_maxrss_mb(), setup_rss_mb=rss_setup,
                  start_rss_mb=_START_MAXRSS_KB / 1024.0, vm_hwm_mb=_vm_hwm_mb(), end_rss_mb=_rss_now_mb(),
                  settings=settings)
    result["peak_delta_mb"] = result["peak_rss_mb"] - rss_setup
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


def run_child(label: str, side: str, config_path: Path, workdir: Path, warmup: int,
              webp_method: int | None = None) -> dict[str, Any]:
    if workdir.exists():
        shutil.rmtree(workdir)
    cmd = [sys.executable, "-c", LAUNCHER, sys.executable, str(Path(__file__).resolve()), "--child", side,
           "--config", str(config_path), "--workdir", str(workdir), "--warmup", str(warmup)]
    if webp_method is not None:
        cmd += ["--webp-method", str(webp_method)]
    env = {**os.environ, "PYTHONHASHSEED": "0"}
    proc = subprocess.run(cmd, cwd=ROOT, env=env, capture_output=True, text=True, check=False)
    if proc.returncode != 0:
        raise SystemExit(f"{label} child failed ({proc.returncode}):\n{proc.stderr}")
    result: dict[str, Any] = json.loads(proc.stdout.strip().splitlines()[-1])
    if result["start_rss_mb"] > 40:
        raise SystemExit(f"{label}: ru_maxrss was already {result['start_rss_mb']:.0f} MB at interpreter "
                         "start; the peak would not be this process's own")
    result["workdir"] = str(workdir)
    return result


def _decode_rgb(path: Path) -> np.ndarray:
    with Image.open(path) as img:
        return np.asarray(img.convert("RGB"))


def reference_images(config: dict[str, Any], workdir: Path) -> dict[int, np.ndarray]:
    """The baseline's edited full-size image resized to each width, before any lossy encode."""
    from PIL import ImageCms

    from media_service.limits import IMAGE_WIDTHS
    from media_service.packs import load_registry
    from media_service.recipe import recipe_from_dict

    refs: dict[int, np.ndarray] = {}
    registry = load_registry([Path(p) for p in config["filter_roots"]],
                             [Path(p) for p in config["sticker_roots"]])
    workdir.mkdir(parents=True, exist_ok=True)
    baseline_pipeline(Path(config["input"]), registry, recipe_from_dict(config["recipe"]), IMAGE_WIDTHS,
                      workdir, ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB")),
                      on_resized=lambda w, im: refs.__setitem__(w, np.asarray(im).copy()))
    return refs


def ssim(ref: np.ndarray, test: np.ndarray) -> float:
    from skimage.metrics import structural_similarity

    if ref.shape != test.shape:
        raise SystemExit(f"shape mismatch: reference {ref.shape}, rendition {test.shape}")
    return float(structural_similarity(ref, test, channel_axis=2, data_range=255))


def quality(refs: dict[int, np.ndarray], workdir: Path, renditions: list[dict[str, Any]]) -> dict[str, float]:
    out = {}
    for r in renditions:
        out[r["name"]] = ssim(refs[r["width"]], _decode_rgb(workdir / r["name"]))
    return out


def check_outputs(ours: dict[str, Any], base: dict[str, Any]) -> list[str]:
    """The baseline must produce the same set of outputs; returns the problems found."""
    problems = []
    key = lambda r: (r["name"], r["width"], r["height"])  # noqa: E731
    if sorted(map(key, ours["renditions"])) != sorted(map(key, base["renditions"])):
        problems.append(f"renditions differ: ours {sorted(map(key, ours['renditions']))}, "
                        f"baseline {sorted(map(key, base['renditions']))}")
    if len(ours["renditions"]) != 6:
        problems.append(f"expected 3 widths × WebP+JPEG, got {len(ours['renditions'])} renditions")
    for side in (ours, base):
        for r in side["renditions"]:
            path = Path(side["workdir"]) / r["name"]
            with Image.open(path) as img:
                fmt, size = img.format, img.size
                exif, icc = img.getexif(), img.info.get("icc_profile")
            expected = "WEBP" if r["name"].endswith(".webp") else "JPEG"
            if fmt != expected or size != (r["width"], r["height"]):
                problems.append(f"{side['side']} {r['name']}: {fmt} {size}")
            if len(exif) or icc:
                problems.append(f"{side['side']} {r['name']}: carries metadata (EXIF {len(exif)} tags, "
                                f"ICC {bool(icc)})")
    for field in ("blurhash", "dominant_color"):
        if not ours.get(field) or not base.get(field):
            problems.append(f"{field} missing")
    return problems


def _fmt_s(v: float) -> str:
    return f"{v:.3f}"


def print_table(rows: list[list[str]], header: list[str]) -> None:
    widths = [max(len(str(x)) for x in col) for col in zip(header, *rows, strict=True)]
    line = "  ".join(h.ljust(w) if i == 0 else h.rjust(w) for i, (h, w) in enumerate(zip(header, widths,
                                                                                          strict=True)))
    print(line)
    print("-" * len(line))
    for row in rows:
        print("  ".join(str(c).ljust(w) if i == 0 else str(c).rjust(w)
                        for i, (c, w) in enumerate(zip(row, widths, strict=True))))


def ours_rungs(config: dict[str, Any]) -> dict[int, Image.Image]:
    """Our pipeline run in this process, with the exact images it hands to the WebP encoder captured."""
    import media_service.pipeline.image as pipeline
    from media_service.packs import load_registry
    from media_service.recipe import recipe_from_dict

    registry = load_registry([Path(p) for p in config["filter_roots"]],
                             [Path(p) for p in config["sticker_roots"]])
    captured: dict[int, Image.Image] = {}
    original = pipeline.encode_webp

    def capture(img: Image.Image, path: Path) -> Any:
        captured[img.width] = img.copy()
        return original(img, path)

    tmp = Path(tempfile.mkdtemp(prefix="photo_bench_rungs_"))
    pipeline.encode_webp = capture  # type: ignore[assignment]
    try:
        pipeline.run_image_pipeline(pipeline.ImageJob(source=Path(config["input"]),
                                                      recipe=recipe_from_dict(config["recipe"]),
                                                      registry=registry, workdir=tmp))
    finally:
        pipeline.encode_webp = original
        shutil.rmtree(tmp, ignore_errors=True)
    return captured


def encoder_grid(rungs: dict[int, Image.Image], grid: list[tuple[int, float]], refs: dict[int, np.ndarray],
                 base_1080: tuple[float, int], reps: int) -> list[dict[str, Any]]:
    """Encode-only CPU of our three rungs per (method, quality), best of ``reps`` in this process, and the
    1080 WebP's SSIM and bytes against the baseline's (encoding is deterministic)."""
    tmp = Path(tempfile.mkdtemp(prefix="photo_bench_grid_"))
    widths = sorted(rungs, reverse=True)
    best = {(cell, w): float("inf") for cell in grid for w in widths}
    try:
        for _ in range(reps):  # rounds over the whole grid, so a busy moment does not hit one cell only
            for method, q in grid:
                for w in widths:
                    t0 = time.process_time()
                    rungs[w].save(tmp / f"w{w}.webp", "WEBP", quality=q, method=method)
                    best[(method, q), w] = min(best[(method, q), w], time.process_time() - t0)
        out = []
        for method, q in grid:
            rungs[1080].save(tmp / "w1080.webp", "WEBP", quality=q, method=method)
            size = (tmp / "w1080.webp").stat().st_size
            s = ssim(refs[1080], _decode_rgb(tmp / "w1080.webp"))
            per_rung = [best[(method, q), w] for w in widths]
            out.append({"method": method, "quality": q, "encode_ms": [round(v * 1000, 1) for v in per_rung],
                        "encode_total_ms": sum(per_rung) * 1000, "bytes_1080": size, "ssim_1080": s,
                        "ssim_diff": base_1080[0] - s, "bytes_ratio": size / base_1080[1]})
        return out
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="measured runs per side (default 5)")
    parser.add_argument("--warmup", type=int, default=1,
                        help="untimed runs in each process before the timed one (default 1)")
    parser.add_argument("--webp-sweep", action="store_true",
                        help="also measure our pipeline per WebP method and an encode-only grid of "
                             "methods × qualities, and recommend a setting")
    parser.add_argument("--sweep-methods", default=",".join(map(str, SWEEP_METHODS)),
                        help="WebP methods for --webp-sweep (default 0,1,2,3,4)")
    parser.add_argument("--sweep-qualities", default=",".join(map(str, SWEEP_QUALITIES)),
                        help="WebP qualities for the encode-only grid of --webp-sweep (default 80,81,82,83)")
    parser.add_argument("--detail", type=float, default=1.0,
                        help="texture/noise of the generated scene (default 1.0; 0 = clean upscaled photos)")
    parser.add_argument("--json", type=Path, default=OUT / "photo_bench.json")
    parser.add_argument("--child", choices=("ours", "baseline"), help=argparse.SUPPRESS)
    parser.add_argument("--config", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--workdir", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--webp-method", type=int, help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.child:
        child_main(args.child, args.config, args.workdir, args.warmup, args.webp_method)
        return

    OUT.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="photo_bench_"))
    try:
        report = run_bench(args, tmp)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    args.json.parent.mkdir(parents=True, exist_ok=True)
    args.json.write_text(json.dumps(report, indent=2) + "\n")
    print(f"\nJSON: {args.json.relative_to(ROOT) if args.json.is_relative_to(ROOT) else args.json}")
    if not report["pass"]:
        sys.exit(1)


def run_bench(args: argparse.Namespace, tmp: Path) -> dict[str, Any]:
    from media_service.imaging import encode

    icc = display_p3_icc()
    t0 = time.perf_counter()
    source = make_photo(OUT / "input_12mp_p3_o6.jpg", icc, args.detail)
    packs = resolve_packs(tmp)
    config = {"input": source["path"], **packs}
    config_path = OUT / "config.json"
    config_path.write_text(json.dumps(config, indent=2))
    print(f"input: {SRC_W}×{SRC_H} JPEG q{SOURCE_QUALITY}, EXIF orientation 6 (→ 3000×4000), Display-P3 ICC, "
          f"GPS; {source['bytes'] / 1e6:.2f} MB; scene detail {args.detail:g}; generated in "
          f"{time.perf_counter() - t0:.1f} s")
    print(f"packs: {packs['note']}; look {packs['recipe']['filter']['id']} @ {LOOK_INTENSITY}; stickers "
          f"{', '.join(s['id'] for s in packs['recipe']['stickers'])} (second rotated 20°)")
    print(f"ours: encode_webp q{encode.WEBP_QUALITY} method {encode.WEBP_METHOD}, encode_jpeg "
          f"q{encode.JPEG_QUALITY}; baseline: WebP Pillow defaults (q80, method 4), JPEG q{encode.JPEG_QUALITY} "
          "with Pillow's other defaults")
    print(f"runs: {args.repeat} per side, interleaved, each a fresh process with {args.warmup} untimed "
          f"warm-up run(s); {os.cpu_count()} CPUs\n")

    methods = tuple(int(m) for m in args.sweep_methods.split(",")) if args.webp_sweep else ()
    qualities = tuple(float(q) for q in args.sweep_qualities.split(","))
    samples = {"ours": Sample("ours", []), "baseline": Sample("baseline", [])}
    sweep = {m: Sample(f"ours m{m}", []) for m in methods}
    for i in range(args.repeat):
        samples["ours"].runs.append(run_child("ours", "ours", config_path, OUT / "ours", args.warmup))
        samples["baseline"].runs.append(run_child("baseline", "baseline", config_path, OUT / "baseline",
                                                  args.warmup))
        for m in methods:
            sweep[m].runs.append(run_child(f"ours m{m}", "ours", config_path, OUT / f"ours-m{m}", args.warmup,
                                           webp_method=m))
        o, b = samples["ours"].runs[-1], samples["baseline"].runs[-1]
        print(f"  round {i + 1}/{args.repeat}: ours {o['cpu_s']:.3f} s CPU, {o['peak_rss_mb']:.0f} MB; "
              f"baseline {b['cpu_s']:.3f} s CPU, {b['peak_rss_mb']:.0f} MB"
              + "".join(f"; m{m} {sweep[m].runs[-1]['cpu_s']:.3f} s" for m in methods), flush=True)

    ours, base = samples["ours"], samples["baseline"]
    ours_last, base_last = ours.runs[-1], base.runs[-1]
    problems = check_outputs(ours_last, base_last)
    refs = reference_images(config, tmp / "reference")
    q_ours = quality(refs, Path(ours_last["workdir"]), ours_last["renditions"])
    q_base = quality(refs, Path(base_last["workdir"]), base_last["renditions"])
    bytes_ours = {r["name"]: r["bytes"] for r in ours_last["renditions"]}
    bytes_base = {r["name"]: r["bytes"] for r in base_last["renditions"]}
    rungs = ours_rungs(config)
    q_lossless = {w: ssim(refs[w], np.asarray(img)) for w, img in rungs.items()}
    if q_lossless[1080] < 0.98:  # a wrong orientation, crop, look or sticker placement lands far below
        problems.append(f"ours before encoding is not the baseline's picture (SSIM {q_lossless[1080]:.4f})")

    cpu_ratio = ours.median("cpu_s") / base.median("cpu_s")
    paired = [o["cpu_s"] / b["cpu_s"] for o, b in zip(ours.runs, base.runs, strict=True)]
    peak_ours = max(ours.values("peak_rss_mb"))
    ssim_diff = q_base["w1080.webp"] - q_ours["w1080.webp"]
    bytes_ratio = bytes_ours["w1080.webp"] / bytes_base["w1080.webp"]

    print("\nTime and memory (median / min over runs; memory median / max)")
    rows = []
    for label, key, fmt, agg in (("CPU time [s]", "cpu_s", _fmt_s, min),
                                 ("wall time [s]", "wall_s", _fmt_s, min),
                                 ("peak RSS [MB]", "peak_rss_mb", "{:.0f}".format, max),
                                 ("RSS after imports+setup [MB]", "setup_rss_mb", "{:.0f}".format, max),
                                 ("peak RSS − setup [MB]", "peak_delta_mb", "{:.0f}".format, max)):
        rows.append([label, f"{fmt(ours.median(key))} / {fmt(agg(ours.values(key)))}",
                     f"{fmt(base.median(key))} / {fmt(agg(base.values(key)))}",
                     f"{ours.median(key) / base.median(key):.2f}×" if base.median(key) else "–"])
    print_table(rows, ["", "ours", "baseline", "ours/baseline"])
    print(f"paired CPU ratios per round: {', '.join(f'{r:.3f}' for r in paired)}")

    step_names = list(ours_last["timings"])
    steps = {s: {"wall_ms": statistics.median(r["timings"][s] for r in ours.runs) * 1000,
                 "cpu_ms": statistics.median(r["step_cpu"][s] for r in ours.runs) * 1000} for s in step_names}
    print("\nOurs per step (ms, median over runs; wall from job.timings)")
    print_table([[s, f"{v['wall_ms']:.1f}", f"{v['cpu_ms']:.1f}"] for s, v in steps.items()]
                + [["total", f"{sum(v['wall_ms'] for v in steps.values()):.1f}",
                    f"{sum(v['cpu_ms'] for v in steps.values()):.1f}"]], ["step", "wall", "CPU"])

    base_steps = {k: statistics.median(r["step_cpu"][k] for r in base.runs) * 1000
                  for k in base_last["step_cpu"]}
    print("Baseline per phase (CPU ms, median): " + ", ".join(f"{k} {v:.1f}" for k, v in base_steps.items()))

    print("\nOutputs (bytes; SSIM against the baseline's lossless render at that width)")
    rows = []
    for r in ours_last["renditions"]:
        n = r["name"]
        rows.append([n, f"{r['width']}×{r['height']}", f"{bytes_ours[n]:,}", f"{bytes_base[n]:,}",
                     f"{bytes_ours[n] / bytes_base[n]:.3f}", f"{q_ours[n]:.4f}", f"{q_base[n]:.4f}",
                     f"{q_base[n] - q_ours[n]:+.4f}"])
    print_table(rows, ["rendition", "size", "ours B", "baseline B", "ratio", "SSIM ours", "SSIM base",
                       "base−ours"])
    print("ours before encoding (lossless) against the reference: "
          + ", ".join(f"{w}: {q_lossless[w]:.4f}" for w in sorted(q_lossless, reverse=True))
          + "  (what decode scale, ICC/look/stickers at output size and the ladder cost)")
    print(f"blurhash: ours {ours_last['blurhash']}, baseline {base_last['blurhash']}; dominant colour: "
          f"ours {ours_last['dominant_color']}, baseline {base_last['dominant_color']}")

    targets = [
        ("CPU time ≤ 0.35× baseline (ratio of medians)", cpu_ratio <= TARGET_CPU_RATIO, f"{cpu_ratio:.3f}×"),
        ("ours peak RSS ≤ 150 MB (worst run)", peak_ours <= TARGET_PEAK_MB, f"{peak_ours:.0f} MB"),
        ("1080 WebP SSIM within 0.005 of baseline", ssim_diff <= TARGET_SSIM_DIFF, f"{ssim_diff:+.4f}"),
        ("1080 WebP bytes ≤ 1.10× baseline", bytes_ratio <= TARGET_BYTES_RATIO, f"{bytes_ratio:.3f}×"),
        ("same outputs as the baseline", not problems, "; ".join(problems) or "6 renditions + placeholders"),
    ]
    print("\nTargets")
    for name, ok, value in targets:
        print(f"  {'PASS' if ok else 'FAIL'}  {name}: {value}")

    report: dict[str, Any] = {
        "date": date.today().isoformat(), "machine": {"cpus": os.cpu_count(), "platform": platform.platform(),
                                                      "python": platform.python_version(),
                                                      "pillow": Image.__version__},
        "input": source, "packs": packs, "repeat": args.repeat, "warmup": args.warmup,
        "settings": {"ours": ours_last["settings"], "baseline": base_last["settings"]},
        "runs": {"ours": ours.runs, "baseline": base.runs},
        "summary": {
            side: {k: {"median": s.median(k), "min": min(s.values(k)), "max": max(s.values(k))}
                   for k in ("cpu_s", "wall_s", "peak_rss_mb", "setup_rss_mb", "peak_delta_mb")}
            for side, s in samples.items()},
        "ours_steps_ms_median": steps,
        "baseline_phases_cpu_ms_median": base_steps,
        "ours_lossless_ssim": {str(w): v for w, v in q_lossless.items()},
        "cpu_ratio": cpu_ratio, "cpu_ratio_paired": paired,
        "outputs": {n: {"ours_bytes": bytes_ours[n], "baseline_bytes": bytes_base[n], "ours_ssim": q_ours[n],
                        "baseline_ssim": q_base[n]} for n in bytes_ours},
        "placeholders": {"ours": {k: ours_last[k] for k in ("blurhash", "dominant_color")},
                         "baseline": {k: base_last[k] for k in ("blurhash", "dominant_color")}},
        "targets": {name: {"pass": ok, "value": value} for name, ok, value in targets},
        "pass": all(ok for _, ok, _ in targets),
    }

    if methods:
        report["webp_sweep"] = webp_sweep_report(rungs, methods, qualities, sweep, ours, base, refs, q_base,
                                                 bytes_base)
    return report


def webp_sweep_report(rungs: dict[int, Image.Image], methods: tuple[int, ...], qualities: tuple[float, ...],
                      sweep: dict[int, Sample], ours: Sample, base: Sample, refs: dict[int, np.ndarray],
                      q_base: dict[str, float], bytes_base: dict[str, int]) -> dict[str, Any]:
    """Two views: our full pipeline per WebP method at the current quality (measured, fresh processes,
    interleaved with the main runs), and an encode-only grid of methods × qualities from which the
    recommendation is made (its pipeline CPU is estimated: measured median − current encodes + cell's)."""
    from media_service.imaging import encode

    base_cpu = base.median("cpu_s")
    grid = [(m, q) for m in methods for q in qualities]
    current = (encode.WEBP_METHOD, float(encode.WEBP_QUALITY))
    if current not in grid:
        grid.append(current)
    cells = encoder_grid(rungs, grid, refs, (q_base["w1080.webp"], bytes_base["w1080.webp"]), reps=5)
    current_enc = next(c["encode_total_ms"] for c in cells if (c["method"], c["quality"]) == current)

    rows, measured = [], []
    for m in methods:
        runs = sweep[m]
        last = runs.runs[-1]
        r1080 = next(r for r in last["renditions"] if r["name"] == "w1080.webp")
        q = quality({1080: refs[1080]}, Path(last["workdir"]), [r1080])["w1080.webp"]
        entry = {"method": m, "quality": encode.WEBP_QUALITY, "cpu_s_median": runs.median("cpu_s"),
                 "cpu_s_min": min(runs.values("cpu_s")), "cpu_ratio": runs.median("cpu_s") / base_cpu,
                 "peak_rss_mb_max": max(runs.values("peak_rss_mb")), "bytes_1080": r1080["bytes"],
                 "bytes_ratio": r1080["bytes"] / bytes_base["w1080.webp"], "ssim_1080": q,
                 "ssim_diff": q_base["w1080.webp"] - q}
        entry["meets_all"] = _meets(entry) and entry["cpu_ratio"] <= TARGET_CPU_RATIO and \
            entry["peak_rss_mb_max"] <= TARGET_PEAK_MB
        measured.append(entry)
        rows.append([f"method {m}", f"{entry['cpu_s_median']:.3f}", f"{entry['cpu_ratio']:.3f}×",
                     f"{r1080['bytes']:,}", f"{entry['bytes_ratio']:.3f}×", f"{q:.4f}",
                     f"{entry['ssim_diff']:+.4f}", "yes" if entry["meets_all"] else "no"])
    print(f"\nWebP sweep 1: our full pipeline per method at q{encode.WEBP_QUALITY} (fresh processes; "
          f"baseline median CPU {base_cpu:.3f} s)")
    print_table(rows, ["", "CPU s (med)", "vs base", "1080 bytes", "bytes ×", "SSIM 1080", "base−ours",
                       "all targets"])

    rows = []
    for c in cells:
        pipeline_cpu = ours.median("cpu_s") - current_enc / 1000 + c["encode_total_ms"] / 1000
        c["cpu_ratio_est"] = pipeline_cpu / base_cpu
        c["meets_all"] = _meets(c) and c["cpu_ratio_est"] <= TARGET_CPU_RATIO
        rows.append([f"m{c['method']} q{c['quality']:g}", " / ".join(f"{v:.1f}" for v in c["encode_ms"]),
                     f"{c['encode_total_ms']:.1f}", f"{c['cpu_ratio_est']:.3f}×", f"{c['bytes_ratio']:.3f}×",
                     f"{c['ssim_diff']:+.4f}", "yes" if c["meets_all"] else "no"])
    print("\nWebP sweep 2: encode only, our three rungs (CPU ms, best of 5); 1080 against the baseline's "
          "WebP")
    print_table(rows, ["", "ms 1080/720/360", "total ms", "est. CPU ratio", "bytes ×", "base−ours",
                       "all targets"])
    # The method sets the encode cost (a step is 20–100 %); within one method a quality step costs 1–3 %,
    # below this machine's noise. So: the cheapest method with a passing quality, and within it the
    # quality with the widest margin to the nearer of the SSIM and bytes limits.
    ok = [c for c in cells if c["meets_all"]]
    best = None
    if ok:
        per_method = {m: min(c["encode_total_ms"] for c in cells if c["method"] == m) for m in methods}
        method = min({c["method"] for c in ok}, key=lambda m: per_method[m])
        best = max((c for c in ok if c["method"] == method), key=_margin)
    if best is None:
        print("recommendation: no WebP setting meets every target")
    else:
        print(f"recommendation: WebP method {best['method']}, quality {best['quality']:g} (the cheapest method "
              f"that meets every target, at its quality with the widest margin: {_margin(best):.0%} of the "
              f"nearer limit left; current: method {current[0]}, quality {current[1]:g})")
    return {"pipeline_per_method": measured, "encode_grid": cells,
            "recommended": {"method": best["method"], "quality": best["quality"]} if best else None}


def _margin(c: dict[str, Any]) -> float:
    """The fraction of the nearer limit (SSIM difference or extra bytes) that is left."""
    return min((TARGET_SSIM_DIFF - c["ssim_diff"]) / TARGET_SSIM_DIFF,
               (TARGET_BYTES_RATIO - c["bytes_ratio"]) / (TARGET_BYTES_RATIO - 1.0))


def _meets(c: dict[str, Any]) -> bool:
    return bool(c["ssim_diff"] <= TARGET_SSIM_DIFF and c["bytes_ratio"] <= TARGET_BYTES_RATIO)


if __name__ == "__main__":
    main()
