"""The sniff-and-probe entry points fuzzed with hypothesis (bounded): bytes that start like an accepted
format but are otherwise anything must end in one of our errors, never in a crash or a hang."""

from __future__ import annotations

import contextlib
import io
import struct
import tempfile
import zlib
from pathlib import Path

from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from media_service.errors import MediaError
from media_service.imaging.decode import open_image, read_facts
from media_service.imaging.sniff import sniff
from media_service.limits import DEFAULT_LIMITS
from media_service.probe import probe_video


def bounded(examples: int) -> hsettings:
    return hsettings(max_examples=examples, deadline=None, derandomize=True, database=None,
                     suppress_health_check=list(HealthCheck))

MAGIC = [b"\xff\xd8\xff\xe0", b"\x89PNG\r\n\x1a\n", b"GIF89a", b"RIFF\x00\x00\x00\x00WEBP",
         b"\x00\x00\x00\x18ftypheic", b"\x00\x00\x00\x18ftypisom", b"\x00\x00\x00\x14ftypqt  ", b"\x1a\x45\xdf\xa3"]


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


@st.composite
def lying_png(draw: st.DrawFn) -> bytes:
    """A well-formed PNG header with fuzzed dimensions, depth and chunks after it."""
    width = draw(st.integers(0, 2**31 - 1))
    height = draw(st.integers(0, 2**31 - 1))
    depth = draw(st.sampled_from([1, 2, 4, 8, 16, 0, 3, 255]))
    colour = draw(st.sampled_from([0, 2, 3, 4, 6, 1, 7]))
    ihdr = struct.pack(">IIBBBBB", width, height, depth, colour, 0, 0, draw(st.integers(0, 2)))
    tail = draw(st.binary(max_size=256))
    return b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", ihdr) + tail


@bounded(2000)
@given(st.binary(max_size=96))
def test_sniff_never_raises(head: bytes) -> None:
    result = sniff(head)
    assert result is None or result.kind in ("image", "video")


@bounded(1500)
@given(st.sampled_from(MAGIC[:5]), st.binary(max_size=2048))
def test_image_header_reading_ends_in_our_errors(magic: bytes, body: bytes) -> None:
    data = magic + body
    if sniff(data[:64]) is None or sniff(data[:64]).kind != "image":  # type: ignore[union-attr]
        return
    try:
        with open_image(io.BytesIO(data)) as img:
            read_facts(img, DEFAULT_LIMITS)
    except MediaError:
        pass


@bounded(1500)
@given(lying_png())
def test_png_dimensions_from_the_header_are_capped(data: bytes) -> None:
    try:
        with open_image(io.BytesIO(data)) as img:
            facts = read_facts(img, DEFAULT_LIMITS)
    except MediaError:
        return
    assert facts.width * facts.height <= DEFAULT_LIMITS.max_image_pixels


@bounded(80)
@given(st.sampled_from(MAGIC[5:]), st.binary(min_size=0, max_size=4096))
def test_video_probe_ends_in_our_errors(magic: bytes, body: bytes) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        path = Path(tmp) / "source"
        path.write_bytes(magic + body)
        with contextlib.suppress(MediaError):
            probe_video(path, timeout=10)
