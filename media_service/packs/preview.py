"""`media-service packs preview`: one PNG contact sheet of the given packs, rendered by the service's own code.

Looks go through the photo pipeline's look step (the registry's Pillow Color3DLUT) and through the video
pipeline's planning steps up to its look (ffmpeg lut3d on an H.264 yuv420p frame), so the sheet shows what
users get on both; stickers are placed by ``render_sticker``; tracks are decoded and measured by ffmpeg.
"""

from __future__ import annotations

import os
import re
import shutil
import tempfile
import textwrap
from collections.abc import Callable, Iterator, Sequence
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field
from functools import partial
from importlib import resources
from pathlib import Path
from typing import TypeVar

import ffmpeg
import numpy as np
from numpy.typing import NDArray
from PIL import Image, ImageDraw, ImageFont

from media_service.errors import MediaError, PackError
from media_service.ffmpeg.classify import classify
from media_service.ffmpeg.runner import run_tool
from media_service.ffmpeg.safety import AUDIO_DEMUXERS, input_args
from media_service.geometry import Box
from media_service.imaging.overlay import PlacedSticker, place_stickers
from media_service.packs.loudness import SILENCE
from media_service.packs.registry import Look, PackRegistry, StickerItem, Track, pack_folders
from media_service.packs.validate import validate
from media_service.pipeline import image as photo_pipeline
from media_service.pipeline import video as video_pipeline
from media_service.probe import VideoFacts, probe_video
from media_service.recipe import recipe_from_dict

PHOTO_SIDE = 480  # samples are rendered at this long side, then shown smaller
MAX_PHOTOS = 3
PHOTO_SUFFIXES = (".jpg", ".jpeg", ".png", ".webp", ".heic", ".heif")
INTENSITIES = (1.0, 0.5)
LOOK_COLUMNS = ("original", "100", "50")
LOOK_CELL = (144, 108)
STICKER_CELL = (212, 159)  # four tiles (two cells each) fill a row
WAVE_HEIGHT = 72
WAVE_RATE = 8000  # Hz of the mono PCM the waveform is drawn from: plenty for a few thousand columns
MARGIN = 24
GAP = 4
GROUP_GAP = 16
HEADER_EVERY = 8  # looks rows between repeated column headers
CHECKER = 12

BACKGROUND = (30, 30, 30)
PANEL = (44, 44, 44)
TEXT = (236, 236, 236)
DIM = (150, 150, 150)
RED = (255, 96, 96)
AMBER = (255, 190, 80)
WAVE_PEAK = (90, 140, 200)
WAVE_RMS = (160, 210, 255)
LOOP_FILL = (52, 72, 52)
LOOP_EDGE = (140, 220, 140)
CHECKER_COLOURS = ((204, 204, 204), (255, 255, 255))

Font = ImageFont.FreeTypeFont | ImageFont.ImageFont
Colour = tuple[int, int, int]
T = TypeVar("T")

GROUP_WIDTH = 3 * LOOK_CELL[0] + 2 * GAP
INNER_WIDTH = (MAX_PHOTOS + 1) * GROUP_WIDTH + MAX_PHOTOS * GROUP_GAP
SHEET_WIDTH = INNER_WIDTH + 2 * MARGIN


# --- what the sheet is made of --------------------------------------------------------------------


@dataclass(frozen=True)
class Photo:
    name: str
    path: Path
    image: Image.Image  # RGB, sRGB, long side at most PHOTO_SIDE, as the photo pipeline prepared it


@dataclass
class Sheet:
    """The contact sheet and where each cell is on it, so that tests (and people) can find them.

    Cell names: ``look/<id>/photo<i>/<column>`` and ``look/<id>/video/<column>`` (column: original, 100, 50),
    ``sticker/<id>/checker``, ``sticker/<id>/photo``, ``track/<id>/waveform``."""

    image: Image.Image
    cells: dict[str, Box]
    problems: list[PackError]
    registry: PackRegistry

    @property
    def items(self) -> int:
        return len(self.registry.looks) + len(self.registry.stickers) + len(self.registry.tracks)


@dataclass
class Section:
    image: Image.Image
    cells: dict[str, Box] = field(default_factory=dict)


@dataclass(frozen=True)
class Fonts:
    title: Font
    heading: Font
    label: Font
    small: Font
    cjk: Font | None  # label size; None when the system has no CJK font


# --- fonts ----------------------------------------------------------------------------------------

CJK_NAME_HINTS = ("cjk", "wqy", "wenquanyi", "sourcehan", "droidsansfallback", "notosanssc", "notoserifsc",
                  "sarasa", "simhei", "simsun", "msyh", "pingfang", "hiragino", "uming", "ukai")
FONT_DIRS = (Path("/usr/share/fonts"), Path("/usr/local/share/fonts"), Path.home() / ".local/share/fonts",
             Path.home() / ".fonts", Path("/System/Library/Fonts"), Path("/Library/Fonts"))
FONT_SUFFIXES = (".ttf", ".otf", ".ttc")


def _font(size: int, bold: bool = False) -> Font:
    try:
        return ImageFont.truetype("DejaVuSans-Bold.ttf" if bold else "DejaVuSans.ttf", size)
    except OSError:
        return ImageFont.load_default(size)


def _fc_list_cjk() -> list[tuple[Path, int]]:
    if shutil.which("fc-list") is None:
        return []
    try:
        out = run_tool(["fc-list", "-f", "%{file}\t%{index}\t%{family}\n", ":lang=zh-cn"], timeout=10).stdout
    except MediaError:
        return []
    found: list[tuple[int, Path, int]] = []
    for line in out.decode("utf-8", "replace").splitlines():
        parts = line.split("\t")
        if len(parts) == 3 and parts[1].isdigit() and Path(parts[0]).suffix.lower() in FONT_SUFFIXES:
            # Simplified-Chinese faces first: titles are zh-CN.
            rank = 0 if re.search(r"\b(SC|CN)\b|GB", parts[2]) else 1
            found.append((rank, Path(parts[0]), int(parts[1])))
    return [(path, index) for _, path, index in sorted(found)]


def _named_cjk() -> list[tuple[Path, int]]:
    out: list[tuple[Path, int]] = []
    for root in FONT_DIRS:
        if root.is_dir():
            out += [(p, 0) for p in sorted(root.rglob("*")) if p.suffix.lower() in FONT_SUFFIXES
                    and any(hint in p.name.lower() for hint in CJK_NAME_HINTS)]
    return out


def find_cjk_font(size: int) -> Font | None:
    """A font that can draw Chinese titles, if the system has one (fontconfig first, then known names)."""
    for path, index in [*_fc_list_cjk(), *_named_cjk()]:
        try:
            return ImageFont.truetype(str(path), size, index=index)
        except OSError:
            continue
    return None


def load_fonts(cjk: bool = True) -> Fonts:
    return Fonts(title=_font(26, bold=True), heading=_font(18, bold=True), label=_font(14),
                 small=_font(12), cjk=find_cjk_font(14) if cjk else None)


# --- photos ---------------------------------------------------------------------------------------


class NoPhotos(ValueError):
    """``--photos`` names no folder, or a folder without a photo."""


def sample_photo_paths() -> list[Path]:
    folder = resources.files("media_service.packs") / "samples"
    return sorted(Path(str(p)) for p in folder.iterdir() if p.name.lower().endswith(PHOTO_SUFFIXES))


def photo_paths(folder: Path | None) -> list[Path]:
    """The designer's photos (the first few by name) or the bundled samples."""
    if folder is None:
        return sample_photo_paths()[:MAX_PHOTOS]
    if not folder.is_dir():
        raise NoPhotos(f"{folder}: not a folder")
    found = sorted(p for p in folder.iterdir() if p.is_file() and p.suffix.lower() in PHOTO_SUFFIXES)
    if not found:
        raise NoPhotos(f"{folder}: no photos ({', '.join(PHOTO_SUFFIXES)})")
    return found[:MAX_PHOTOS]


def load_photo(path: Path, registry: PackRegistry, workdir: Path) -> Photo:
    """Decoded, turned upright and converted to sRGB by the photo pipeline's own steps, as an upload is."""
    job = photo_pipeline.ImageJob(source=path, recipe=recipe_from_dict({}), registry=registry, workdir=workdir,
                                  widths=(PHOTO_SIDE,), detect_faces=False)
    photo_pipeline.run_image_pipeline(job, [photo_pipeline.decode, photo_pipeline.orient,
                                            photo_pipeline.normalise_mode, photo_pipeline.crop_to_aspect,
                                            photo_pipeline.to_srgb])
    img = job.img.convert("RGB")
    img.thumbnail((PHOTO_SIDE, PHOTO_SIDE), Image.Resampling.LANCZOS)
    # Even sides, so that the video frame made from it is the same picture (4:2:0 needs even sizes).
    img = img.crop((0, 0, max(2, img.width // 2 * 2), max(2, img.height // 2 * 2)))
    return Photo(path.name, path, img)


def photo_with_look(photo: Photo, registry: PackRegistry, look_id: str, intensity: float,
                    workdir: Path) -> Image.Image:
    job = photo_pipeline.ImageJob(source=photo.path,
                                  recipe=recipe_from_dict({"filter": {"id": look_id, "intensity": intensity}}),
                                  registry=registry, workdir=workdir, detect_faces=False)
    job.image = photo.image
    photo_pipeline.apply_filter(job)
    return job.img


def photo_with_sticker(photo: Photo, registry: PackRegistry, sticker_id: str, workdir: Path) -> Image.Image:
    job = photo_pipeline.ImageJob(source=photo.path,
                                  recipe=recipe_from_dict({"stickers": [{"id": sticker_id, "x": 0.5, "y": 0.5}]}),
                                  registry=registry, workdir=workdir, detect_faces=False)
    job.image = photo.image.copy()  # the step pastes in place
    photo_pipeline.stickers(job)
    return job.img


# --- the video frame ------------------------------------------------------------------------------

# The video pipeline's own planning steps, from the source up to and including the look.
LOOK_CHAIN = video_pipeline.PLAN_STEPS[: video_pipeline.PLAN_STEPS.index(video_pipeline.plan_look) + 1]


def make_video_source(photo: Photo, workdir: Path) -> tuple[Path, VideoFacts]:
    """A 1 s H.264 clip of the photo, BT.709 limited-range 4:2:0 as phones record it."""
    png = workdir / "video-source.png"
    photo.image.save(png, compress_level=1)
    clip = workdir / "video-source.mp4"
    run_tool(["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y", *input_args("image2,png_pipe"),
              "-loop", "1", "-framerate", "10", "-t", "1", "-i", str(png),
              "-vf", "scale=out_color_matrix=bt709:out_range=tv,format=yuv420p", "-c:v", "libx264",
              "-preset", "veryfast", "-crf", "12", "-colorspace", "bt709", "-color_primaries", "bt709",
              "-color_trc", "bt709", "-color_range", "tv", "-an", str(clip)], timeout=60, classify=classify)
    return clip, probe_video(clip)


def video_frame(clip: Path, facts: VideoFacts, registry: PackRegistry, look_id: str | None, intensity: float,
                workdir: Path) -> Image.Image:
    """The first frame as the video pipeline renders it (its poster conversion back to RGB)."""
    workdir.mkdir(parents=True, exist_ok=True)
    video_pipeline.prepare_workdir(clip, workdir)
    recipe = recipe_from_dict({"filter": {"id": look_id, "intensity": intensity}} if look_id else {})
    job = video_pipeline.VideoJob(source=workdir / "source", facts=facts, recipe=recipe, registry=registry,
                                  workdir=workdir)
    for step in LOOK_CHAIN:
        step(job)
    node = video_pipeline._to_rgb(job.video)
    argv = video_pipeline._with_global_args(ffmpeg.output(node, "frame.png", frames=1, update=1).compile(),
                                            ["-nostdin", "-hide_banner", "-loglevel", "error", "-y"])
    run_tool(argv, timeout=60, cwd=workdir, classify=classify)
    with Image.open(workdir / "frame.png") as img:
        return img.convert("RGB")


# --- stickers -------------------------------------------------------------------------------------


def checkerboard(size: tuple[int, int], square: int = CHECKER) -> Image.Image:
    h, w = size[1], size[0]
    y, x = np.mgrid[0:h, 0:w]
    light = ((x // square + y // square) % 2).astype(bool)
    arr = np.empty((h, w, 3), np.uint8)
    arr[~light], arr[light] = CHECKER_COLOURS
    return Image.fromarray(arr)


def sticker_on_checker(registry: PackRegistry, item: StickerItem, size: tuple[int, int]) -> Image.Image:
    art = registry.sticker_image(item.id)
    # As large as fits in 80% of the cell, so that its edges and transparency can be judged.
    scale = min(0.8, 0.8 * size[1] * art.width / (art.height * size[0]))
    return place_stickers(checkerboard(size), [PlacedSticker(art, 0.5, 0.5, max(0.01, scale), 0.0, 1.0)])


def animation_seconds(registry: PackRegistry, item: StickerItem) -> float:
    return sum(duration for _, duration in registry.sticker_frames(item.id)) / 1000


# --- tracks ---------------------------------------------------------------------------------------


def track_samples(path: Path) -> NDArray[np.int16]:
    """The track as stereo PCM at WAVE_RATE, (frames, 2), for its waveform. Its loudness is not measured
    again: the sheet shows what validation measured and stored, the figures the video pipeline levels by."""
    result = run_tool(["ffmpeg", "-nostdin", "-hide_banner", "-nostats", *input_args(AUDIO_DEMUXERS), "-i", str(path),
                       "-vn", "-af", f"aformat=sample_fmts=s16:sample_rates={WAVE_RATE}:channel_layouts=stereo",
                       "-f", "s16le", "pipe:1"], timeout=120, classify=classify)
    pcm = np.frombuffer(result.stdout, dtype="<i2")
    return pcm[: pcm.size // 2 * 2].reshape(-1, 2).astype(np.int16)


def column_levels(samples: NDArray[np.int16], columns: int) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Peak (the louder channel) and RMS (both channels) per pixel column, 0–1 of full scale."""
    x = np.abs(samples.reshape(samples.shape[0], -1).astype(np.float64)) / 32768.0
    if x.shape[0] < columns:
        x = np.pad(x, ((0, columns - x.shape[0]), (0, 0)))
    starts = np.linspace(0, x.shape[0], columns + 1).astype(np.int64)[:-1]
    counts = np.diff(np.append(starts, x.shape[0]))
    peak = np.maximum.reduceat(x.max(axis=1), starts)
    rms = np.sqrt(np.add.reduceat((x * x).mean(axis=1), starts) / counts)
    return peak, rms


def waveform(samples: NDArray[np.int16], duration: float, loop: tuple[float, float] | None,
             size: tuple[int, int]) -> Image.Image:
    w, h = size
    img = Image.new("RGB", size, PANEL)
    draw = ImageDraw.Draw(img)
    if loop is not None and duration > 0:
        x0, x1 = (round(t / duration * (w - 1)) for t in loop)
        draw.rectangle((x0, 0, x1, h - 1), fill=LOOP_FILL)
    peak, rms = column_levels(samples, w)
    mid = (h - 1) / 2
    for x, (p, r) in enumerate(zip(peak, rms, strict=True)):
        draw.line((x, round(mid - p * mid), x, round(mid + p * mid)), fill=WAVE_PEAK)
        draw.line((x, round(mid - r * mid), x, round(mid + r * mid)), fill=WAVE_RMS)
    if loop is not None and duration > 0:
        for t in loop:
            x = round(t / duration * (w - 1))
            draw.line((x, 0, x, h - 1), fill=LOOP_EDGE, width=2)
    return img


def tick_step(duration: float) -> float:
    return next((s for s in (1, 2, 5, 10, 15, 30, 60, 120) if duration / s <= 12), 300)


def clock(seconds: float) -> str:
    return f"{int(seconds // 60)}:{seconds % 60:04.1f}"


# --- drawing helpers ------------------------------------------------------------------------------


def plural(n: int, word: str) -> str:
    return f"{n} {word}{'' if n == 1 else 's'}"


def fit_text(text: str, font: Font, width: float) -> str:
    if font.getlength(text) <= width:
        return text
    while text and font.getlength(text + "…") > width:
        text = text[:-1]
    return text + "…"


def draw_runs(draw: ImageDraw.ImageDraw, xy: tuple[float, float], runs: Sequence[tuple[str, Font, Colour]],
              max_x: float) -> float:
    """Draw text pieces in a row, each in its own font and colour; returns where the row ended."""
    x, y = xy
    for text, font, colour in runs:
        if not text or x >= max_x:
            continue
        text = fit_text(text, font, max_x - x)
        draw.text((x, y), text, font=font, fill=colour)
        x += font.getlength(text)
    return x


def title_runs(item_id: str, en: str, zh: str, fonts: Fonts) -> list[tuple[str, Font, Colour]]:
    runs: list[tuple[str, Font, Colour]] = [(item_id, fonts.label, TEXT), (f"   {en}", fonts.label, TEXT)]
    if fonts.cjk is not None:
        runs.append((f"  {zh}", fonts.cjk, TEXT))
    return runs


def fit_into(img: Image.Image, size: tuple[int, int], background: Colour = PANEL) -> Image.Image:
    """The image scaled to fit the cell (never up), centred on the background."""
    out = Image.new("RGB", size, background)
    scaled = img.copy()
    scaled.thumbnail(size, Image.Resampling.LANCZOS)
    out.paste(scaled, ((size[0] - scaled.width) // 2, (size[1] - scaled.height) // 2))
    return out


def offset(cells: dict[str, Box], dx: int, dy: int) -> dict[str, Box]:
    return {name: Box(b.left + dx, b.top + dy, b.width, b.height) for name, b in cells.items()}


def stack(sections: Sequence[Section], width: int = SHEET_WIDTH) -> tuple[Image.Image, dict[str, Box]]:
    height = sum(s.image.height for s in sections) + MARGIN
    sheet = Image.new("RGB", (width, height), BACKGROUND)
    cells: dict[str, Box] = {}
    y = 0
    for section in sections:
        sheet.paste(section.image, (0, y))
        cells |= offset(section.cells, 0, y)
        y += section.image.height
    return sheet, cells


def blank(height: int) -> tuple[Image.Image, ImageDraw.ImageDraw]:
    img = Image.new("RGB", (SHEET_WIDTH, height), BACKGROUND)
    return img, ImageDraw.Draw(img)


def gather(pool: ThreadPoolExecutor, jobs: dict[str, Callable[[], T]]) -> dict[str, T]:
    futures: dict[str, Future[T]] = {key: pool.submit(job) for key, job in jobs.items()}
    return {key: future.result() for key, future in futures.items()}


def _where(problem: PackError) -> str:
    path = Path(problem.path)
    try:
        shown = str(path.resolve().relative_to(Path.cwd()))
    except (ValueError, OSError):
        shown = problem.path
    return f"{shown}:{problem.line}: {problem.problem}" if problem.line else f"{shown}: {problem.problem}"


# --- sections -------------------------------------------------------------------------------------


def header_section(paths: Sequence[Path], registry: PackRegistry, problems: Sequence[PackError],
                   photos: Sequence[Photo], fonts: Fonts) -> Section:
    line_h = 18
    chars = max(40, int(INNER_WIDTH / fonts.small.getlength("n")))
    problem_lines = [part for p in problems for part in textwrap.wrap(_where(p), chars, subsequent_indent="    ")]
    height = MARGIN + 34 + 2 * line_h + (line_h + 6 + line_h * len(problem_lines) if problems else 0) + 8
    img, draw = blank(height)
    y = MARGIN
    draw.text((MARGIN, y), "Pack preview", font=fonts.title, fill=TEXT)
    y += 34
    counts = (f"{plural(len(registry.looks), 'look')}, {plural(len(registry.stickers), 'sticker')}, "
              f"{plural(len(registry.tracks), 'track')} from {', '.join(map(str, paths))}")
    draw_runs(draw, (MARGIN, y), [(counts, fonts.label, TEXT)], SHEET_WIDTH - MARGIN)
    y += line_h
    photo_names = ", ".join(p.name for p in photos)
    note = f"sample photos: {photo_names}" + ("" if fonts.cjk else "   (no CJK font found: Chinese titles not shown)")
    draw_runs(draw, (MARGIN, y), [(note, fonts.small, DIM)], SHEET_WIDTH - MARGIN)
    y += line_h
    if problems:
        y += 6
        label = f"{plural(len(problems), 'problem')} (the items concerned are left out):"
        draw.text((MARGIN, y), label, font=fonts.label, fill=RED)
        y += line_h
        for line in problem_lines:
            draw.text((MARGIN, y), line, font=fonts.small, fill=RED)
            y += line_h
    return Section(img)


def section_heading(text: str, fonts: Fonts) -> Section:
    img, draw = blank(44)
    draw.line((MARGIN, 10, SHEET_WIDTH - MARGIN, 10), fill=(70, 70, 70))
    draw.text((MARGIN, 18), text, font=fonts.heading, fill=TEXT)
    return Section(img)


def look_groups(photos: Sequence[Photo]) -> list[str]:
    return [f"{p.name} · photo" for p in photos] + [f"{photos[0].name} · video frame (H.264 4:2:0, ffmpeg lut3d)"]


def group_left(g: int) -> int:
    return MARGIN + g * (GROUP_WIDTH + GROUP_GAP)


def video_divider(draw: ImageDraw.ImageDraw, groups: int, top: int, bottom: int) -> None:
    """A line between the photo cells and the video cells: the two renderers must be told apart."""
    x = group_left(groups - 1) - GROUP_GAP // 2
    draw.line((x, top, x, bottom), fill=(90, 90, 90), width=2)


def looks_header(groups: Sequence[str], fonts: Fonts) -> Section:
    img, draw = blank(40)
    video_divider(draw, len(groups), 0, 40)
    for g, name in enumerate(groups):
        x = group_left(g)
        draw_runs(draw, (x, 2), [(name, fonts.small, TEXT)], x + GROUP_WIDTH)
        for c, column in enumerate(("original", "100%", "50%")):
            draw.text((x + c * (LOOK_CELL[0] + GAP), 20), column, font=fonts.small, fill=DIM)
    return Section(img)


def look_row(look: Look, renders: dict[str, Image.Image], groups: int, fonts: Fonts) -> Section:
    """One look: its label, then per group the original, 100% and 50% cells."""
    label_h = 24
    img, draw = blank(label_h + LOOK_CELL[1] + 14)
    video_divider(draw, groups, 0, img.height)
    runs = title_runs(look.id, look.title.en, look.title.zh, fonts)
    runs.append((f"   pack {look.pack.id} {look.pack.version} · default {look.intensity:.0%}", fonts.small, DIM))
    draw_runs(draw, (MARGIN, 3), runs, SHEET_WIDTH - MARGIN)
    cells: dict[str, Box] = {}
    for g in range(groups):
        group = "video" if g == groups - 1 else f"photo{g}"
        for c, column in enumerate(LOOK_COLUMNS):
            name = f"look/{look.id}/{group}/{column}"
            box = Box(group_left(g) + c * (LOOK_CELL[0] + GAP), label_h, *LOOK_CELL)
            img.paste(fit_into(renders[name], LOOK_CELL), (box.left, box.top))
            cells[name] = box
    return Section(img, cells)


def sticker_tile(item: StickerItem, checker: Image.Image, on_photo: Image.Image, seconds: float | None,
                 fonts: Fonts) -> Section:
    tile_w = 2 * STICKER_CELL[0] + GAP
    label_h = 56
    img = Image.new("RGB", (tile_w, label_h + STICKER_CELL[1]), BACKGROUND)
    draw = ImageDraw.Draw(img)
    draw_runs(draw, (0, 2), title_runs(item.id, item.title.en, item.title.zh, fonts), tile_w)
    facts = f"pack {item.pack.id} {item.pack.version} · {item.width}×{item.height} px · default scale {item.scale:g}"
    draw_runs(draw, (0, 21), [(facts, fonts.small, DIM)], tile_w)
    third: list[tuple[str, Font, Colour]] = [(f"tags: {', '.join(item.tags)}" if item.tags else "", fonts.small, DIM)]
    if seconds is not None:
        third.insert(0, (f"animated: {item.frames} frames, {seconds:.2f} s loop   ", fonts.small, AMBER))
    draw_runs(draw, (0, 37), third, tile_w)
    checker_box = Box(0, label_h, *STICKER_CELL)
    photo_box = Box(STICKER_CELL[0] + GAP, label_h, *STICKER_CELL)
    img.paste(checker, (checker_box.left, checker_box.top))
    img.paste(fit_into(on_photo, STICKER_CELL), (photo_box.left, photo_box.top))
    return Section(img, {f"sticker/{item.id}/checker": checker_box, f"sticker/{item.id}/photo": photo_box})


def grid(tiles: Sequence[Section], gap: int = 24) -> Section:
    if not tiles:
        return Section(blank(0)[0])
    tile_w, tile_h = tiles[0].image.size
    per_row = max(1, (INNER_WIDTH + gap) // (tile_w + gap))
    rows = (len(tiles) + per_row - 1) // per_row
    img, _ = blank(rows * (tile_h + gap))
    cells: dict[str, Box] = {}
    for i, tile in enumerate(tiles):
        x = MARGIN + (i % per_row) * (tile_w + gap)
        y = (i // per_row) * (tile_h + gap)
        img.paste(tile.image, (x, y))
        cells |= offset(tile.cells, x, y)
    return Section(img, cells)


def track_row(track: Track, samples: NDArray[np.int16], fonts: Fonts) -> Section:
    label_h, axis_h = 42, 18
    img, draw = blank(label_h + WAVE_HEIGHT + axis_h + 12)
    runs = title_runs(track.id, track.title.en, track.title.zh, fonts)
    runs.append((f"   {track.artist} · {track.license} · pack {track.pack.id} {track.pack.version}", fonts.small, DIM))
    draw_runs(draw, (MARGIN, 3), runs, SHEET_WIDTH - MARGIN)
    loud = track.loudness
    lufs = "silent" if loud.integrated <= SILENCE else f"{loud.integrated:.1f} LUFS integrated"
    peak = "-inf" if loud.true_peak <= SILENCE else f"{loud.true_peak:.1f}"
    stats: list[tuple[str, Font, Colour]] = [(f"{clock(track.duration)} long · {lufs} · ", fonts.label, TEXT),
                                             (f"true peak {peak} dBTP", fonts.label,
                                              AMBER if loud.true_peak > -1.0 else TEXT)]
    loop = (f" · loop {clock(track.loop[0])}–{clock(track.loop[1])}" if track.loop
            else " · no loop region: the whole track repeats")
    stats.append((loop, fonts.label, LOOP_EDGE if track.loop else DIM))
    draw_runs(draw, (MARGIN, 21), stats, SHEET_WIDTH - MARGIN)
    box = Box(MARGIN, label_h, INNER_WIDTH, WAVE_HEIGHT)
    img.paste(waveform(samples, track.duration, track.loop, (box.width, box.height)), (box.left, box.top))
    step = tick_step(track.duration)
    t = 0.0
    while t <= track.duration:
        x = box.left + round(t / max(track.duration, 1e-6) * (box.width - 1))
        draw.line((x, box.bottom, x, box.bottom + 4), fill=DIM)
        text = f"{int(t // 60)}:{int(t % 60):02d}"
        if x + fonts.small.getlength(text) < SHEET_WIDTH - MARGIN:
            draw.text((x + 2, box.bottom + 3), text, font=fonts.small, fill=DIM)
        t += step
    return Section(img, {f"track/{track.id}/waveform": box})


# --- the sheet ------------------------------------------------------------------------------------


def _looks_sections(registry: PackRegistry, photos: Sequence[Photo], work: Path, pool: ThreadPoolExecutor,
                    fonts: Fonts) -> Iterator[Section]:
    looks = list(registry.looks.values())
    if not looks:
        return
    clip, facts = make_video_source(photos[0], work)
    video_jobs: dict[str, Callable[[], Image.Image]] = {
        "original": partial(video_frame, clip, facts, registry, None, 1.0, work / "video-original")}
    for n, look in enumerate(looks):
        for intensity, column in zip(INTENSITIES, LOOK_COLUMNS[1:], strict=True):
            video_jobs[f"look/{look.id}/video/{column}"] = partial(video_frame, clip, facts, registry, look.id,
                                                                   intensity, work / f"video-{n}-{column}")
    frames = gather(pool, video_jobs)
    groups = look_groups(photos)
    yield section_heading(f"Looks ({len(looks)}): each on the photos (the photo pipeline) and on a video frame "
                          "(the video pipeline), at 100% and 50%", fonts)
    for n, look in enumerate(looks):
        if n % HEADER_EVERY == 0:
            yield looks_header(groups, fonts)
        renders = {f"look/{look.id}/video/original": frames["original"]}
        for i, photo in enumerate(photos):
            renders[f"look/{look.id}/photo{i}/original"] = photo.image
            for intensity, column in zip(INTENSITIES, LOOK_COLUMNS[1:], strict=True):
                renders[f"look/{look.id}/photo{i}/{column}"] = photo_with_look(photo, registry, look.id, intensity,
                                                                               work)
        renders |= {k: v for k, v in frames.items() if k.startswith(f"look/{look.id}/")}
        yield look_row(look, renders, len(photos) + 1, fonts)


def _sticker_sections(registry: PackRegistry, photos: Sequence[Photo], work: Path, fonts: Fonts) -> Iterator[Section]:
    stickers = list(registry.stickers.values())
    if not stickers:
        return
    yield section_heading(f"Stickers ({len(stickers)}): on a checkerboard, and on a photo at their default "
                          "scale (first frame of animated ones)", fonts)
    tiles = [sticker_tile(item, sticker_on_checker(registry, item, STICKER_CELL),
                          photo_with_sticker(photos[0], registry, item.id, work),
                          animation_seconds(registry, item) if item.animated else None, fonts)
             for item in stickers]
    yield grid(tiles)


def _track_sections(registry: PackRegistry, pool: ThreadPoolExecutor, fonts: Fonts) -> Iterator[Section]:
    tracks = list(registry.tracks.values())
    if not tracks:
        return
    measures = gather(pool, {t.id: partial(track_samples, t.path) for t in tracks})
    yield section_heading(f"Music ({len(tracks)}): peak (dark) and RMS (light) waveform, loop region in green",
                          fonts)
    for track in tracks:
        yield track_row(track, measures[track.id], fonts)


def build_sheet(paths: Sequence[Path], photos_dir: Path | None = None, *, fonts: Fonts | None = None,
                workers: int | None = None, progress: Callable[[str], None] = lambda _message: None) -> Sheet:
    """Validate the given pack paths and render every valid item; problems are listed at the top."""
    photo_files = photo_paths(photos_dir)
    progress("validating the packs")
    registry, problems = validate(list(paths))
    fonts = fonts or load_fonts()
    progress(f"rendering {len(registry.looks)} looks, {len(registry.stickers)} stickers, "
             f"{len(registry.tracks)} tracks")
    with tempfile.TemporaryDirectory(prefix="packs-preview-") as tmp, \
            ThreadPoolExecutor(max_workers=workers or min(4, os.cpu_count() or 2)) as pool:
        work = Path(tmp)
        photos = [load_photo(p, registry, work) for p in photo_files]
        sections = [header_section(paths, registry, problems, photos, fonts),
                    *_looks_sections(registry, photos, work, pool, fonts),
                    *_sticker_sections(registry, photos, work, fonts),
                    *_track_sections(registry, pool, fonts)]
    image, cells = stack(sections)
    return Sheet(image, cells, problems, registry)


def paths_without_packs(paths: Sequence[Path]) -> list[Path]:
    return [p for p in paths if not pack_folders([p])]


def write_sheet(sheet: Sheet, output: Path) -> Path:
    output.parent.mkdir(parents=True, exist_ok=True)
    sheet.image.save(output, "PNG", optimize=False, compress_level=6)
    return output
