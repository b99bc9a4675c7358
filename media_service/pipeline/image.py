"""The photo pipeline: IMAGE_STEPS run in order over one ImageJob.

Decode happens once, at the smallest JPEG DCT scale that still serves the widest rendition; the crop and
the resize to that width are one resampling pass; the smaller widths are derived from the larger.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from PIL import Image

from media_service import geometry
from media_service.errors import ToolTimeout
from media_service.geometry import Box
from media_service.imaging import decode as dec
from media_service.imaging.encode import Encoded, encode_jpeg, encode_webp
from media_service.imaging.faces import find_faces
from media_service.imaging.overlay import apply_look, place_stickers
from media_service.imaging.placeholder import blurhash, dominant_color
from media_service.limits import DEFAULT_LIMITS, IMAGE_WIDTHS, Limits
from media_service.packs import PackRegistry
from media_service.pipeline.stickers import placed_sticker
from media_service.recipe import Recipe


@dataclass(frozen=True)
class Rendition:
    name: str
    path: Path
    content_type: str
    width: int
    height: int
    bytes: int

    def public(self) -> dict[str, Any]:
        return {"name": self.name, "content_type": self.content_type, "width": self.width,
                "height": self.height, "bytes": self.bytes}


@dataclass
class ImageJob:
    source: Path
    recipe: Recipe
    registry: PackRegistry
    workdir: Path
    limits: Limits = DEFAULT_LIMITS
    widths: tuple[int, ...] = IMAGE_WIDTHS
    detect_faces: bool = True
    progress: Callable[[float], None] = lambda _fraction: None
    deadline: float = field(default_factory=lambda: time.monotonic() + DEFAULT_LIMITS.image_job_seconds)

    # Filled in by the steps.
    facts: dec.ImageFacts | None = None
    image: Image.Image | None = None
    crop: Box | None = None
    out_size: tuple[int, int] = (0, 0)
    renditions: list[Rendition] = field(default_factory=list)
    placeholder: dict[str, str] = field(default_factory=dict)
    timings: dict[str, float] = field(default_factory=dict)

    @property
    def img(self) -> Image.Image:
        assert self.image is not None, "decode runs first"
        return self.image


def decode(job: ImageJob) -> None:
    opened = dec.open_image(job.source)
    facts = dec.read_facts(opened, job.limits)
    job.facts = facts
    crop_w, crop_h = geometry.crop_size(facts.width, facts.height, job.recipe.aspect.ratio())
    out_w, out_h = geometry.fit_width(crop_w, crop_h, max(job.widths))
    job.out_size = (out_w, out_h)
    # The scale is the same in both axes, so the source's own (unrotated) size takes it as it is.
    request = geometry.decode_request(*opened.size, out_w / crop_w)
    job.image = dec.decode(opened, request)


def orient(job: ImageJob) -> None:
    if job.facts is not None and job.facts.orientation != 1:
        job.image = dec.orient(job.img)


def normalise_mode(job: ImageJob) -> None:
    job.image = dec.normalise_mode(job.img)


def to_srgb(job: ImageJob) -> None:
    # After the crop and resize: the colour transform then touches ≈2× fewer pixels.
    job.image = dec.to_srgb(job.img)


def crop_to_aspect(job: ImageJob) -> None:
    img = job.img
    ratio = job.recipe.aspect.ratio()
    cw, ch = geometry.crop_size(img.width, img.height, ratio)
    faces = find_faces(img) if job.detect_faces and (cw, ch) != img.size else []
    job.crop = geometry.aspect_crop(img.width, img.height, ratio, faces)
    out_w, out_h = geometry.fit_width(job.crop.width, job.crop.height, job.out_size[0])
    if (out_w, out_h) == img.size and job.crop.as_ltrb() == (0, 0, img.width, img.height):
        return
    job.image = img.resize((out_w, out_h), Image.Resampling.LANCZOS, box=job.crop.as_ltrb(), reducing_gap=3.0)


def apply_filter(job: ImageJob) -> None:
    spec = job.recipe.filter
    if spec is None:
        return
    job.image = apply_look(job.img, job.registry.look_filter(spec.id, spec.intensity))


def stickers(job: ImageJob) -> None:
    if not job.recipe.stickers:
        return
    job.image = place_stickers(job.img, [placed_sticker(job.registry, s) for s in job.recipe.stickers])


def render_ladder(job: ImageJob) -> None:
    current = job.img
    for width in geometry.ladder(current.width, job.widths):
        if width != current.width:
            height = max(1, round(current.height * width / current.width))
            current = current.resize((width, height), Image.Resampling.LANCZOS, reducing_gap=3.0)
        for encoded, ext in ((encode_webp(current, job.workdir / f"w{width}.webp"), "webp"),
                             (encode_jpeg(current, job.workdir / f"w{width}.jpg"), "jpg")):
            job.renditions.append(_rendition(f"w{width}.{ext}", encoded))
    # The smallest rung feeds the placeholder: it is already small, so the thumbnail is cheap.
    job.image = current


def _rendition(name: str, e: Encoded) -> Rendition:
    return Rendition(name, e.path, e.content_type, e.width, e.height, e.bytes)


def placeholder(job: ImageJob) -> None:
    job.placeholder = {"blurhash": blurhash(job.img), "dominant_color": dominant_color(job.img)}


Step = Callable[[ImageJob], None]
IMAGE_STEPS: list[Step] = [decode, orient, normalise_mode, crop_to_aspect, to_srgb, apply_filter, stickers,
                           render_ladder, placeholder]


def run_image_pipeline(job: ImageJob, steps: list[Step] | None = None) -> ImageJob:
    steps = IMAGE_STEPS if steps is None else steps
    for index, step in enumerate(steps):
        if time.monotonic() > job.deadline:
            raise ToolTimeout(f"Processing took longer than the limit (stopped before {step.__name__}).")
        started = time.perf_counter()
        step(job)
        job.timings[step.__name__] = time.perf_counter() - started
        job.progress((index + 1) / len(steps))
    return job
