#!/usr/bin/env python3
"""Generate the starter look pack: ``filters/starter/pack.toml`` and ``filters/starter/luts/<id>.cube``.

Every look is a pure function ``RGB in [0, 1] -> RGB in [0, 1]`` written with numpy and evaluated on a
33×33×33 grid. The output is deterministic: running the script twice writes byte-identical files.
The generated data is released under CC0-1.0.

Usage::

    python scripts/make_starter_looks.py                # writes into filters/starter/ of this repo
    python scripts/make_starter_looks.py --out /tmp/x   # writes pack.toml and luts/ into /tmp/x
"""

from __future__ import annotations

import argparse
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

LUT_SIZE = 33
SCRIPT_NAME = "scripts/make_starter_looks.py"
DEFAULT_OUT = Path(__file__).resolve().parent.parent / "filters" / "starter"

# BT.709 luma weights (the photos we get are sRGB, whose primaries are BT.709's).
LUMA = np.array([0.2126, 0.7152, 0.0722])
KB, KR = 0.0722, 0.2126

Array = np.ndarray


# --------------------------------------------------------------------------------------------------
# Building blocks. Every helper takes and returns float64 arrays of shape (..., 3) (or (...) for luma).
# --------------------------------------------------------------------------------------------------


def identity_grid(n: int = LUT_SIZE) -> Array:
    """All grid points in .cube order (red changing fastest), shape (n**3, 3)."""
    steps = np.linspace(0.0, 1.0, n)
    b, g, r = np.meshgrid(steps, steps, steps, indexing="ij")
    return np.stack([r.ravel(), g.ravel(), b.ravel()], axis=-1)


def luma(rgb: Array) -> Array:
    return rgb @ LUMA


def to_ycc(rgb: Array) -> tuple[Array, Array, Array]:
    """BT.709 Y'CbCr with Cb, Cr in [-0.5, 0.5]."""
    y = luma(rgb)
    cb = (rgb[..., 2] - y) / (2.0 * (1.0 - KB))
    cr = (rgb[..., 0] - y) / (2.0 * (1.0 - KR))
    return y, cb, cr


def from_ycc(y: Array, cb: Array, cr: Array) -> Array:
    r = y + 2.0 * (1.0 - KR) * cr
    b = y + 2.0 * (1.0 - KB) * cb
    g = (y - KR * r - KB * b) / LUMA[1]
    return np.stack([r, g, b], axis=-1)


def smoothstep(e0: float, e1: float, x: Array) -> Array:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3.0 - 2.0 * t)


def bump(x: Array) -> Array:
    """0 at 0 and 1, 1 at 0.5: the weight of a midtone curve adjustment."""
    return 4.0 * x * (1.0 - x)


def channel_curves(rgb: Array, amounts: tuple[float, float, float]) -> Array:
    """Per-channel midtone curve: channel c moves by amounts[c] at 0.5 and keeps its end points."""
    x = np.clip(rgb, 0.0, 1.0)
    return x + np.asarray(amounts) * bump(x)


def s_curve(x: Array, k: float) -> Array:
    """Monotonic cubic S-curve through (0,0), (0.5,0.5), (1,1); k in [-1, 1] (negative flattens)."""
    x = np.clip(x, 0.0, 1.0)
    return x + k * x * (1.0 - x) * (2.0 * x - 1.0)


def gamma(x: Array, g: float) -> Array:
    """g < 1 brightens the midtones, g > 1 darkens them."""
    return np.power(np.clip(x, 0.0, 1.0), g)


def levels(rgb: Array, black: tuple[float, float, float], white: tuple[float, float, float]) -> Array:
    """Map 0 -> black and 1 -> white per channel (lifted blacks, lowered whites, tints at the ends)."""
    lo, hi = np.asarray(black), np.asarray(white)
    return lo + (hi - lo) * rgb


def saturate(rgb: Array, s: float) -> Array:
    """Scale chroma around the BT.709 luma; s=1 is the identity, s=0 is grey."""
    y = luma(rgb)[..., None]
    return y + s * (rgb - y)


def vibrance(rgb: Array, amount: float) -> Array:
    """Saturation that leaves already-saturated colours (and skin, a little) mostly alone."""
    y, cb, cr = to_ycc(rgb)
    chroma = np.hypot(cb, cr)
    s = 1.0 + amount * (1.0 - smoothstep(0.0, 0.35, chroma))
    return from_ycc(y, cb * s, cr * s)


def tone(rgb: Array, colour: tuple[float, float, float], weight: Array, amount: float) -> Array:
    """Push towards a tint colour without changing luma; weight (shape (...)) says where."""
    c = np.asarray(colour)
    direction = c - float(c @ LUMA)
    return rgb + amount * weight[..., None] * direction


def shadows(y: Array) -> Array:
    return 1.0 - smoothstep(0.0, 0.6, y)


def highlights(y: Array) -> Array:
    return smoothstep(0.35, 1.0, y)


def hue_weight(rgb: Array, centre_deg: float, width_deg: float) -> Array:
    """1 near a hue (angle in the Cb/Cr plane), fading to 0 at ±width; 0 for greys."""
    _, cb, cr = to_ycc(rgb)
    angle = np.degrees(np.arctan2(cr, cb))
    d = np.abs((angle - centre_deg + 180.0) % 360.0 - 180.0)
    w = 1.0 - smoothstep(0.0, width_deg, d)
    return w * smoothstep(0.0, 0.08, np.hypot(cb, cr))


def hue_of(rgb: tuple[float, float, float]) -> float:
    _, cb, cr = to_ycc(np.asarray(rgb, dtype=float))
    return float(np.degrees(np.arctan2(cr, cb)))


SKIN = hue_of((0.90, 0.70, 0.58))
GREEN = hue_of((0.35, 0.65, 0.25))
YELLOW = hue_of((0.95, 0.85, 0.25))
SKY = hue_of((0.45, 0.70, 0.95))


# --------------------------------------------------------------------------------------------------
# The looks.
# --------------------------------------------------------------------------------------------------


def warm(rgb: Array) -> Array:
    out = channel_curves(rgb, (0.09, 0.015, -0.09))
    return vibrance(out, 0.08)


def cool(rgb: Array) -> Array:
    out = channel_curves(rgb, (-0.085, 0.0, 0.09))
    return vibrance(out, 0.05)


def faded_film(rgb: Array) -> Array:
    out = saturate(rgb, 0.82)
    out = s_curve(out, -0.25)
    # Lifted, slightly green-warm blacks; whites lowered and a touch creamy.
    out = levels(out, black=(0.085, 0.095, 0.07), white=(0.95, 0.94, 0.88))
    y = luma(out)
    return tone(out, (0.45, 0.6, 0.4), shadows(y), 0.06)


def bw(rgb: Array) -> Array:
    y = luma(np.clip(rgb, 0.0, 1.0))
    y = s_curve(s_curve(y, 0.8), 0.35)
    y = np.clip(0.015 + 0.985 * y, 0.0, 1.0)
    return np.stack([y, y, y], axis=-1)


def teal_orange(rgb: Array) -> Array:
    y, cb, cr = to_ycc(rgb)
    # Rotate the chroma plane onto the orange/teal axis: skin and warm hues go orange, blues and
    # greens go teal. The axis points from teal towards orange.
    axis = np.array([-0.62, 0.78])
    along = cb * axis[0] + cr * axis[1]
    across_cb, across_cr = cb - along * axis[0], cr - along * axis[1]
    cb2 = along * 1.15 * axis[0] + across_cb * 0.6
    cr2 = along * 1.15 * axis[1] + across_cr * 0.6
    out = from_ycc(s_curve(y, 0.2), cb2, cr2)
    y2 = luma(out)
    out = tone(out, (0.1, 0.55, 0.6), shadows(y2), 0.16)
    out = tone(out, (1.0, 0.6, 0.3), highlights(y2) * (1.0 - highlights(y2) ** 3), 0.12)
    return out


def pastel(rgb: Array) -> Array:
    out = saturate(rgb, 0.7)
    out = s_curve(out, -0.3)
    out = gamma(out, 0.8)
    out = levels(out, black=(0.2, 0.18, 0.2), white=(1.0, 0.99, 0.99))
    y = luma(out)
    return tone(out, (1.0, 0.78, 0.85), shadows(y), 0.05)


def vivid(rgb: Array) -> Array:
    out = vibrance(rgb, 0.35)
    out = saturate(out, 1.12)
    out = s_curve(out, 0.25)
    return out


def matcha(rgb: Array) -> Array:
    out = np.clip(rgb, 0.0, 1.0)
    # Yellow-greens and greens become a soft, fresh leaf green; skin is left out of it.
    y, cb, cr = to_ycc(out)
    w_skin = hue_weight(out, SKIN, 45.0)
    w_green = np.maximum(hue_weight(out, GREEN, 70.0), hue_weight(out, YELLOW, 35.0) * 0.6)
    w_green = w_green * (1.0 - w_skin)
    chroma = np.hypot(cb, cr)
    angle = np.arctan2(cr, cb)
    target = np.radians(GREEN - 6.0)
    delta = (target - angle + np.pi) % (2 * np.pi) - np.pi
    angle = angle + w_green * 0.45 * delta
    chroma = chroma * (1.0 + 0.1 * w_green) * (1.0 - 0.2 * hue_weight(out, SKY, 60.0))
    out = from_ycc(y, chroma * np.cos(angle), chroma * np.sin(angle))
    out = saturate(out, 0.9)
    out = gamma(s_curve(out, -0.18), 0.88)
    out = levels(out, black=(0.05, 0.07, 0.055), white=(0.98, 1.0, 0.97))
    return channel_curves(out, (-0.012, 0.015, -0.005))


def sepia(rgb: Array) -> Array:
    x = np.clip(rgb, 0.0, 1.0)
    y = s_curve(luma(x), 0.15)
    # Tone map luma onto a brown -> amber -> cream ramp.
    ramp_pos = np.array([0.0, 0.5, 1.0])
    ramp = np.array([[0.12, 0.08, 0.05], [0.60, 0.46, 0.32], [0.98, 0.94, 0.84]])
    toned = np.stack([np.interp(y, ramp_pos, ramp[:, c]) for c in range(3)], axis=-1)
    keep = 0.15 * (x - luma(x)[..., None])  # a trace of the original colour
    out = toned + keep
    return levels(out, black=(0.04, 0.03, 0.02), white=(0.97, 0.96, 0.94))


def moody(rgb: Array) -> Array:
    out = saturate(rgb, 0.72)
    out = gamma(out, 1.18)
    out = s_curve(out, 0.15)
    y = luma(out)
    out = tone(out, (0.15, 0.35, 0.55), shadows(y), 0.14)
    out = tone(out, (0.9, 0.75, 0.6), highlights(y), 0.04)
    return levels(out, black=(0.035, 0.04, 0.05), white=(0.93, 0.93, 0.92))


def peach(rgb: Array) -> Array:
    out = vibrance(rgb, 0.05)
    out = gamma(out, 0.9)
    out = s_curve(out, -0.12)
    # Pink-peach warmth everywhere except the sky, which stays blue instead of turning lilac.
    keep_sky = 1.0 - 0.8 * hue_weight(out, SKY, 50.0)
    out = out + keep_sky[..., None] * (channel_curves(out, (0.05, 0.0, 0.01)) - out)
    y = luma(out)
    out = tone(out, (1.0, 0.72, 0.72), (highlights(y) + 0.5 * shadows(y)) * keep_sky, 0.08)
    return levels(out, black=(0.05, 0.03, 0.04), white=(1.0, 0.98, 0.98))


def cream(rgb: Array) -> Array:
    out = saturate(rgb, 0.82)
    out = s_curve(out, -0.22)
    out = gamma(out, 0.88)
    out = channel_curves(out, (0.035, 0.02, -0.03))
    return levels(out, black=(0.1, 0.085, 0.065), white=(1.0, 0.985, 0.93))


def japanese(rgb: Array) -> Array:
    # 日系: bright, airy, low contrast, cyan-tinted shadows, slightly cool whites, calm colour.
    out = saturate(rgb, 0.85)
    out = gamma(out, 0.82)
    out = s_curve(out, -0.2)
    y = luma(out)
    out = tone(out, (0.3, 0.7, 0.75), shadows(y), 0.08)
    out = levels(out, black=(0.06, 0.085, 0.095), white=(0.98, 1.0, 1.0))
    return channel_curves(out, (-0.015, 0.005, 0.02))


def clear(rgb: Array) -> Array:
    # 通透: clean and bright with crisp contrast; whites a touch cool, colours cleaner.
    out = gamma(rgb, 0.92)
    out = s_curve(out, 0.2)
    out = vibrance(out, 0.15)
    out = channel_curves(out, (-0.01, 0.0, 0.02))
    y = luma(out)
    return tone(out, (0.9, 0.95, 1.0), highlights(y), 0.03)


@dataclass(frozen=True)
class Look:
    id: str
    en: str
    zh: str
    fn: Callable[[Array], Array]
    intensity: float
    tags: list[str] = field(default_factory=list)


LOOKS: list[Look] = [
    Look("warm", "Warm", "暖阳", warm, 0.85, ["warm", "portrait", "food"]),
    Look("cool", "Cool", "冷调", cool, 0.85, ["cool", "city", "landscape"]),
    Look("faded-film", "Faded film", "复古胶片", faded_film, 0.8, ["film", "vintage", "matte"]),
    Look("bw", "High-contrast B&W", "高反差黑白", bw, 1.0, ["black-and-white", "mono", "street"]),
    Look("teal-orange", "Teal & orange", "青橙", teal_orange, 0.8, ["cinematic", "city", "travel"]),
    Look("pastel", "Pastel", "马卡龙", pastel, 0.75, ["soft", "light", "dessert"]),
    Look("vivid", "Vivid", "鲜艳", vivid, 0.7, ["vivid", "landscape", "food"]),
    Look("matcha", "Matcha", "抹茶", matcha, 0.8, ["green", "fresh", "nature"]),
    Look("sepia", "Vintage sepia", "怀旧棕调", sepia, 0.9, ["vintage", "sepia", "mono"]),
    Look("moody", "Moody", "氛围暗调", moody, 0.8, ["dark", "moody", "cinematic"]),
    Look("peach", "Peach", "蜜桃", peach, 0.8, ["pink", "portrait", "soft"]),
    Look("cream", "Cream", "奶油", cream, 0.8, ["cream", "soft", "warm", "cafe"]),
    Look("japanese", "Japanese airy", "日系", japanese, 0.8, ["light", "airy", "fresh"]),
    Look("clear", "Clear", "通透", clear, 0.7, ["clean", "bright", "landscape"]),
]

PACK = {
    "id": "starter",
    "version": "1.0.0",
    "title_en": "Starter looks",
    "title_zh": "基础滤镜",
    "author": "notes-media",
    "license": "CC0-1.0",
    "description": f"Hand-tuned colour looks generated by {SCRIPT_NAME}.",
}


# --------------------------------------------------------------------------------------------------
# Output.
# --------------------------------------------------------------------------------------------------


def evaluate(look: Look, n: int = LUT_SIZE) -> Array:
    out = look.fn(identity_grid(n))
    if out.shape != (n**3, 3) or not np.all(np.isfinite(out)):
        raise ValueError(f"look {look.id!r} produced a bad table")
    return np.clip(out, 0.0, 1.0)


def cube_text(look: Look, table: Array, n: int = LUT_SIZE) -> str:
    lines = [
        f"# Generated by {SCRIPT_NAME}; licensed CC0-1.0 (public domain dedication).",
        f'TITLE "{look.en} ({look.id})"',
        f"LUT_3D_SIZE {n}",
        "DOMAIN_MIN 0.0 0.0 0.0",
        "DOMAIN_MAX 1.0 1.0 1.0",
    ]
    # "%.6f" of a value in [0, 1] never prints "-0.000000" except for negative zero: drop it.
    table = table + 0.0
    lines.extend(f"{r:.6f} {g:.6f} {b:.6f}" for r, g, b in table.tolist())
    return "\n".join(lines) + "\n"


def toml_str(s: str) -> str:
    return '"' + s.replace("\\", "\\\\").replace('"', '\\"') + '"'


def manifest_text() -> str:
    p = PACK
    lines = [
        f"# Generated by {SCRIPT_NAME}; do not edit by hand, edit the script and re-run it.",
        "[pack]",
        f"id = {toml_str(p['id'])}",
        f"version = {toml_str(p['version'])}",
        f"title = {{ en = {toml_str(p['title_en'])}, zh = {toml_str(p['title_zh'])} }}",
        f"author = {toml_str(p['author'])}",
        f"license = {toml_str(p['license'])}",
        f"description = {toml_str(p['description'])}",
    ]
    for look in LOOKS:
        tags = ", ".join(toml_str(t) for t in look.tags)
        lines += [
            "",
            "[[looks]]",
            f"id = {toml_str(look.id)}",
            f"title = {{ en = {toml_str(look.en)}, zh = {toml_str(look.zh)} }}",
            f"lut = {toml_str(f'luts/{look.id}.cube')}",
            f"intensity = {look.intensity}",
            f"tags = [{tags}]",
        ]
    return "\n".join(lines) + "\n"


def write_if_changed(path: Path, data: bytes) -> None:
    if path.exists() and path.read_bytes() == data:
        return
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=DEFAULT_OUT, help="pack folder (default: %(default)s)")
    args = parser.parse_args(argv)
    out: Path = args.out
    ids = [look.id for look in LOOKS]
    if len(set(ids)) != len(ids):
        raise SystemExit("duplicate look ids")
    luts = out / "luts"
    luts.mkdir(parents=True, exist_ok=True)
    for look in LOOKS:
        write_if_changed(luts / f"{look.id}.cube", cube_text(look, evaluate(look)).encode("ascii"))
    # Remove tables of looks that no longer exist, so the folder matches the manifest.
    for stale in sorted(luts.glob("*.cube")):
        if stale.stem not in ids:
            stale.unlink()
    write_if_changed(out / "pack.toml", manifest_text().encode("utf-8"))
    print(f"wrote {len(LOOKS)} looks to {out}")


if __name__ == "__main__":
    main()
