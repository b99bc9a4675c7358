"""Open a still cheaply: header facts first, then one decode at the smallest size that serves the output."""

from __future__ import annotations

import functools
import io
import struct
import warnings
from dataclasses import dataclass
from pathlib import Path
from typing import BinaryIO

import pillow_heif
from PIL import Image, ImageCms, ImageFile, ImageOps, PngImagePlugin, UnidentifiedImageError

from media_service.errors import CorruptMedia, ImageTooLarge, UnsupportedMediaType
from media_service.imaging.sniff import SNIFF_BYTES, sniff
from media_service.limits import Limits

pillow_heif.register_heif_opener()

# Our own caps are checked first; Pillow's bomb check stays on as a second line.
Image.MAX_IMAGE_PIXELS = 100_000_000
# Headers lie: a file that ends early is corrupt, never "decoded" with grey where its data was missing.
ImageFile.LOAD_TRUNCATED_IMAGES = False
# A PNG text chunk (tEXt/zTXt/iTXt) may decompress to at most 1 MB, and all of them together to 8 MB: a
# 200 MB zTXt bomb of a few hundred KB is refused, not inflated. Pillow's defaults, pinned here on purpose.
PngImagePlugin.MAX_TEXT_CHUNK = 1 << 20
PngImagePlugin.MAX_TEXT_MEMORY = 8 << 20

PIL_FORMATS = {"JPEG": "jpeg", "PNG": "png", "WEBP": "webp", "GIF": "gif", "HEIF": "heif", "MPO": "jpeg"}
# The only Pillow plugins that may parse an upload: bytes that reach Pillow were sniffed already, but Pillow
# must not fall back to another plugin (EPS would hand the file to Ghostscript).
PIL_OPEN_FORMATS = ("JPEG", "PNG", "WEBP", "GIF", "HEIF")  # JPEG opens MPO too
SWAPPING_ORIENTATIONS = {5, 6, 7, 8}

_SRGB = ImageCms.ImageCmsProfile(ImageCms.createProfile("sRGB"))


@dataclass(frozen=True)
class ImageFacts:
    format: str
    width: int  # after EXIF orientation
    height: int
    orientation: int
    mode: str
    has_icc: bool
    frames: int

    def public(self) -> dict[str, object]:
        return {"format": self.format, "width": self.width, "height": self.height}


def _orientation(img: Image.Image) -> int:
    """From the EXIF (or XMP) read with the header. Not ``img.getexif()``: for a PNG that decodes the whole
    image to look for an eXIf chunk after the pixels, which the API must never do at upload."""
    try:
        value = Image.Image.getexif(img).get(0x0112, 1)
    except Exception:  # a broken EXIF block must not stop the photo; orientation falls back to 1
        return 1
    return value if isinstance(value, int) and 1 <= value <= 8 else 1


def read_facts(img: Image.Image, limits: Limits) -> ImageFacts:
    fmt = PIL_FORMATS.get(img.format or "")
    if fmt is None:
        raise UnsupportedMediaType()
    w, h = img.size
    if w <= 0 or h <= 0:
        raise CorruptMedia("The image has no pixels.")
    if w * h > limits.max_image_pixels or max(w, h) > limits.max_image_side:
        raise ImageTooLarge(
            f"The image is {w}×{h}; the limit is {limits.max_image_pixels // 1_000_000} MP and "
            f"{limits.max_image_side} px on a side."
        )
    orientation = _orientation(img)
    if orientation in SWAPPING_ORIENTATIONS:
        w, h = h, w
    return ImageFacts(fmt, w, h, orientation, img.mode, bool(img.info.get("icc_profile")),
                      getattr(img, "n_frames", 1))


def open_image(path: Path | BinaryIO) -> Image.Image:
    """Open lazily (header only); raises our errors, never Pillow's. Callers sniff first, so bytes that
    looked like an accepted format but do not open are corrupt, not unsupported."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            return Image.open(path, formats=PIL_OPEN_FORMATS)
    except (Image.DecompressionBombError, Image.DecompressionBombWarning):
        raise ImageTooLarge() from None
    except UnidentifiedImageError:
        raise CorruptMedia("The file looks like an image but could not be read.") from None
    except (OSError, ValueError, SyntaxError, RuntimeError, EOFError, struct.error) as exc:
        # RuntimeError: pillow-heif's (libheif) errors.
        raise _decode_error(exc) from None


def _decode_error(exc: BaseException) -> CorruptMedia | ImageTooLarge:
    """libheif refuses an image whose coded size (``ispe``) is over its security limit, whatever size the
    header we checked claimed: the size lied, so the image is too large, not merely damaged."""
    if isinstance(exc, RuntimeError) and "Security limit exceeded" in str(exc):
        return ImageTooLarge("The image's coded size is larger than the limit.", detail=str(exc))
    return CorruptMedia(detail=f"{type(exc).__name__}: {exc}")


def probe_file(path: Path, limits: Limits) -> ImageFacts:
    """Header-only facts with every cap checked; nothing is decoded."""
    with path.open("rb") as f:
        sniffed = sniff(f.read(SNIFF_BYTES))
    if sniffed is None or sniffed.kind != "image":
        raise UnsupportedMediaType()
    with open_image(path) as img:
        return read_facts(img, limits)


def decode(img: Image.Image, request: tuple[int, int] | None) -> Image.Image:
    """Decode the first frame; JPEG at the largest DCT reduction still at least ``request`` big."""
    if request is not None and img.format in ("JPEG", "MPO"):
        img.draft(None, request)
    try:
        img.seek(0)
        img.load()
    except (Image.DecompressionBombError, Image.DecompressionBombWarning) as exc:
        raise ImageTooLarge(detail=str(exc)) from None
    except (OSError, ValueError, SyntaxError, RuntimeError, EOFError, struct.error, MemoryError) as exc:
        raise _decode_error(exc) from None
    return img


def orient(img: Image.Image) -> Image.Image:
    out = ImageOps.exif_transpose(img)
    return out if out is not None else img


def normalise_mode(img: Image.Image) -> Image.Image:
    """Modes that resample well: 16-bit and float narrowed to 8-bit grey, palettes expanded, alpha
    flattened onto white. RGB, L and CMYK stay as they are (with their ICC profile) for ``to_srgb``,
    which runs after the resize, on far fewer pixels."""
    icc = img.info.get("icc_profile")
    if img.mode in ("I;16", "I;16B", "I;16L", "I"):
        img = img.point(lambda v: v * (1 / 257)).convert("L")
    elif img.mode == "F":
        img = img.convert("L")
    if img.mode in ("RGBA", "LA", "PA") or (img.mode == "P" and "transparency" in img.info):
        rgba = img.convert("RGBA")
        img = Image.new("RGB", rgba.size, (255, 255, 255))
        img.paste(rgba, mask=rgba.getchannel("A"))
    elif img.mode not in ("RGB", "L", "CMYK"):
        img = img.convert("RGB")
    img.info = {"icc_profile": icc} if icc else {}
    return img


@functools.lru_cache(maxsize=16)
def _transform_to_srgb(icc: bytes, mode: str) -> ImageCms.ImageCmsTransform | None:
    """One lcms transform per distinct profile: iPhone photos all carry the same Display-P3 profile."""
    try:
        src = ImageCms.ImageCmsProfile(io.BytesIO(icc))
        if mode == "RGB" and ImageCms.getProfileDescription(src).strip().lower().startswith("srgb"):
            return None
        return ImageCms.buildTransform(src, _SRGB, mode, "RGB", renderingIntent=ImageCms.Intent.PERCEPTUAL)
    except (ImageCms.PyCMSError, OSError, ValueError):
        return None  # a broken profile: the pixels are taken as sRGB


def to_srgb(img: Image.Image) -> Image.Image:
    """RGB in sRGB, converted from the embedded ICC profile (Display-P3, Adobe RGB, CMYK profiles…).
    The result carries no metadata at all."""
    icc = img.info.get("icc_profile")
    out = img
    if icc and img.mode in ("RGB", "CMYK", "L"):
        transform = _transform_to_srgb(bytes(icc), img.mode)
        if transform is not None:
            out = ImageCms.applyTransform(img, transform) or img
    if out.mode != "RGB":
        out = out.convert("RGB")
    out.info = {}
    return out
