"""Hostile inputs, made by code: Pillow, ffmpeg's lavfi sources and raw bytes. No downloads, no exploit kits.

Every builder takes a ``Build`` (a private folder, the loopback canary's address and the secret file that
nothing may read) and returns the bytes to upload.
"""

from __future__ import annotations

import io
import struct
import subprocess
import zipfile
import zlib
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from tests.support.media import XMP, exif_bytes, png_bomb

FFMPEG = ["ffmpeg", "-nostdin", "-hide_banner", "-loglevel", "error", "-y"]
X264 = ["-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p"]


@dataclass(frozen=True)
class Build:
    dir: Path  # private to this case
    canary_url: str  # http://127.0.0.1:<port>: a listener that must never see a connection
    secret: Path  # a local file whose content (``marker``) must never appear anywhere
    marker: str


Builder = Callable[[Build], bytes]


def ffmpeg(*args: str) -> None:
    subprocess.run([*FFMPEG, *args], check=True, capture_output=True, timeout=60)


def _video(b: Build, name: str, *args: str) -> bytes:
    out = b.dir / name
    ffmpeg(*args, str(out))
    return out.read_bytes()


def noise(width: int, height: int, seed: int = 1) -> Image.Image:
    """Incompressible pixels: a truncated file really misses picture data."""
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 255, (height, width, 3), dtype=np.uint8))


def jpeg(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def png(img: Image.Image, **kw: object) -> bytes:
    buf = io.BytesIO()
    img.save(buf, "PNG", **kw)
    return buf.getvalue()


def png_chunk(kind: bytes, data: bytes) -> bytes:
    return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))


def small_mp4(b: Build, *, seconds: float = 2.0, size: str = "320x240", fps: int = 25, audio: bool = True,
              extra: tuple[str, ...] = (), name: str = "small.mp4") -> bytes:
    args = ["-f", "lavfi", "-i", f"testsrc2=s={size}:r={fps}"]
    if audio:
        args += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000"]
    args += [*X264]
    if audio:
        args += ["-c:a", "aac", "-b:a", "64k"]
    return _video(b, name, *args, "-t", f"{seconds}", *extra)


# --- boxes of an MP4, for headers that lie ------------------------------------------------------------------


def _boxes(data: bytes | bytearray, start: int, end: int) -> list[tuple[bytes, int, int]]:
    """(type, offset, size) of the boxes between start and end."""
    out = []
    pos = start
    while pos + 8 <= end:
        size, kind = struct.unpack_from(">I4s", data, pos)
        if size == 1:
            size = struct.unpack_from(">Q", data, pos + 8)[0]
        elif size == 0:
            size = end - pos
        if size < 8:
            break
        out.append((kind, pos, size))
        pos += size
    return out


def set_mp4_durations(data: bytes, seconds: float, *, movie: bool = True, tracks: bool = True) -> bytes:
    """Rewrite mvhd (and every tkhd, mdhd) to claim ``seconds``: the samples stay as they are."""
    buf = bytearray(data)

    def duration_at(box: int, timescale_offset: int, duration_offset: int, version: int) -> None:
        timescale = struct.unpack_from(">I", buf, box + timescale_offset)[0]
        value = int(seconds * timescale)
        struct.pack_into(">Q" if version else ">I", buf, box + duration_offset, value)

    def walk(start: int, end: int, movie_timescale: int) -> None:
        for kind, pos, size in _boxes(buf, start, end):
            version = buf[pos + 8]
            if kind == b"mvhd":
                movie_timescale = struct.unpack_from(">I", buf, pos + (28 if version else 20))[0]
                if movie:
                    duration_at(pos, 28 if version else 20, 32 if version else 24, version)
            elif kind == b"tkhd" and tracks:
                off = 36 if version else 28
                struct.pack_into(">Q" if version else ">I", buf, pos + off, int(seconds * movie_timescale))
            elif kind == b"mdhd" and tracks:
                duration_at(pos, 28 if version else 20, 32 if version else 24, version)
            elif kind in (b"moov", b"trak", b"mdia"):
                walk(pos + 8, pos + size, movie_timescale)

    walk(0, len(buf), 1000)
    return bytes(buf)


# --- files that lie ------------------------------------------------------------------------------------------


def zero_bytes(b: Build) -> bytes:
    return b""


def truncated_jpeg(b: Build) -> bytes:
    data = jpeg(noise(640, 480))
    return data[: len(data) * 6 // 10]


def jpeg_headers_only(b: Build) -> bytes:
    data = jpeg(noise(64, 48))
    sof = data.find(b"\xff\xc0")
    return data[: sof + 4]  # SOI, APP0, DQT and half a frame header


def truncated_png(b: Build) -> bytes:
    data = png(noise(640, 480), compress_level=1)
    return data[: len(data) // 2]


def truncated_mp4(b: Build) -> bytes:
    # moov at the end (no faststart): half the file has no index at all.
    data = small_mp4(b, seconds=2)
    return data[: len(data) // 2]


def truncated_mp4_faststart(b: Build) -> bytes:
    # The index says 4 s, the samples stop after the first ≈40% of the file.
    data = small_mp4(b, seconds=4, extra=("-movflags", "+faststart"))
    return data[: len(data) * 4 // 10]


def png_named_jpg(b: Build) -> bytes:
    return png(noise(300, 200))


def html_as_jpeg(b: Build) -> bytes:
    return (f'<!DOCTYPE html><html><body><img src="{b.canary_url}/html.png">'
            f'<iframe src="file://{b.secret}"></iframe></body></html>').encode()


def svg_as_png(b: Build) -> bytes:
    return (f'<?xml version="1.0"?><svg xmlns="http://www.w3.org/2000/svg" '
            f'xmlns:xlink="http://www.w3.org/1999/xlink" width="64" height="64">'
            f'<image xlink:href="{b.canary_url}/svg.png" width="64" height="64"/>'
            f'<image xlink:href="file://{b.secret}" width="64" height="64"/></svg>').encode()


def eps_as_jpeg(b: Build) -> bytes:
    # Ghostscript would run this; Pillow's EPS plugin would call Ghostscript. Neither may see it.
    return (f"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 64 64\n"
            f"({b.secret}) (r) file 100 string readstring pop print\nshowpage\n").encode()


def tiff_as_jpeg(b: Build) -> bytes:
    buf = io.BytesIO()
    noise(64, 48).save(buf, "TIFF")
    return buf.getvalue()


def avi_as_mp4(b: Build) -> bytes:
    return _video(b, "clip.avi", "-f", "lavfi", "-i", "testsrc2=s=160x120:r=10", "-c:v", "mpeg4", "-t", "1")


def polyglot_jpeg_zip(b: Build) -> bytes:
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as z:
        z.writestr("payload.txt", f"zip payload {b.marker}")
        z.writestr("evil.html", f"<script src='{b.canary_url}/zip.js'></script>")
    return jpeg(noise(400, 300)) + buf.getvalue()


def mp4_claims_10_hours(b: Build) -> bytes:
    return set_mp4_durations(small_mp4(b, seconds=2, extra=("-movflags", "+faststart")), 36_000)


def mp4_claims_5s_holds_10_minutes(b: Build) -> bytes:
    # 10 real minutes of 32×32 at 5 fps; the header says 5 s: decoding must still stop at the header's length.
    data = _video(b, "long.mp4", "-f", "lavfi", "-i", "testsrc2=s=32x32:r=5", *X264, "-t", "600",
                  "-movflags", "+faststart")
    return set_mp4_durations(data, 5.0)


def jpeg_claims_65000(b: Build) -> bytes:
    data = bytearray(jpeg(noise(64, 48)))
    sof = data.find(b"\xff\xc0")
    struct.pack_into(">HH", data, sof + 5, 65000, 65000)  # height, width
    return bytes(data)


def png_claims_65000(b: Build) -> bytes:
    data = png(noise(64, 48))
    ihdr = bytearray(data[16:29])
    struct.pack_into(">II", ihdr, 0, 65000, 65000)
    return data[:8] + png_chunk(b"IHDR", bytes(ihdr)) + data[33:]


def gif_claims_65000(b: Build) -> bytes:
    buf = io.BytesIO()
    Image.new("P", (64, 48), 1).save(buf, "GIF")
    data = bytearray(buf.getvalue())
    struct.pack_into("<HH", data, 6, 65000, 65000)  # logical screen
    desc = data.find(b"\x2c", 13)  # image descriptor: left, top, width, height
    struct.pack_into("<HH", data, desc + 5, 65000, 65000)
    return bytes(data)


def webp_claims_16383(b: Build) -> bytes:
    buf = io.BytesIO()
    Image.new("RGBA", (64, 48), (1, 2, 3, 128)).save(buf, "WEBP", lossless=True)
    data = bytearray(buf.getvalue())
    if data[12:16] == b"VP8L":  # 14-bit width-1 and height-1 after the signature byte
        bits = (16382) | (16382 << 14) | (1 << 28)  # alpha_is_used
        struct.pack_into("<I", data, 21, bits)
    else:  # VP8X canvas size, 24 bits each, minus one
        data[24:27] = (16382).to_bytes(3, "little")
        data[27:30] = (16382).to_bytes(3, "little")
    return bytes(data)


def _heif(img: Image.Image, **kw: object) -> bytes:
    import pillow_heif

    pillow_heif.register_heif_opener()
    buf = io.BytesIO()
    img.save(buf, "HEIF", quality=60, **kw)
    return buf.getvalue()


def _forge_ispe(data: bytes, width: int, height: int) -> bytes:
    buf = bytearray(data)
    pos = buf.find(b"ispe")
    assert pos > 0
    while pos > 0:
        struct.pack_into(">II", buf, pos + 8, width, height)
        pos = buf.find(b"ispe", pos + 1)
    return bytes(buf)


def heic_forged_size(b: Build) -> bytes:
    return _forge_ispe(_heif(noise(64, 64)), 65000, 65000)


def heic_forged_size_behind_crop(b: Build) -> bytes:
    # 64×48 is coded as 64×64 with a clean-aperture crop: the size Pillow reports comes from the crop, the
    # decoder's from the forged ispe. Only decoding finds out.
    return _forge_ispe(_heif(noise(64, 48)), 65000, 65000)


# --- bombs ------------------------------------------------------------------------------------------------------


def png_50000_square(b: Build) -> bytes:
    return png_bomb(b.dir / "bomb.png").read_bytes()


def _zeros_deflated(size: int) -> bytes:
    comp = zlib.compressobj(1)
    block = b"\0" * (4 << 20)
    parts = [comp.compress(block) for _ in range(size // len(block))]
    parts.append(comp.flush())
    return b"".join(parts)


def png_ztxt_200mb_before_idat(b: Build) -> bytes:
    data = png(noise(64, 48))
    text = png_chunk(b"zTXt", b"Comment\0\0" + _zeros_deflated(200 << 20))
    return data[:33] + text + data[33:]


def png_itxt_200mb_after_idat(b: Build) -> bytes:
    data = png(noise(64, 48))
    text = png_chunk(b"iTXt", b"Comment\0\x01\x00\0\0" + _zeros_deflated(200 << 20))
    return data[:-12] + text + data[-12:]


def gif_10000_frames(b: Build) -> bytes:
    """10,000 real 32×32 frames (red, blue, red, …), written by hand: each frame is the same LZW data
    under its own two-colour table, so the file stays small and nothing merges the frames."""
    buf = io.BytesIO()
    Image.new("P", (32, 32), 0).save(buf, "GIF")
    one = buf.getvalue()
    desc = one.index(b"\x2c", 13)
    lzw = one[desc + 10:-1]  # minimum code size, data sub-blocks, terminator; the trailer dropped
    head = b"GIF89a" + struct.pack("<HHBBB", 32, 32, 0, 0, 0) + b"\x21\xff\x0bNETSCAPE2.0\x03\x01\x00\x00\x00"
    frames = []
    for i in range(10_000):
        colour = b"\xc8\x1e\x1e" if i % 2 == 0 else b"\x1e\x1e\xc8"
        frames.append(b"\x21\xf9\x04\x00" + struct.pack("<H", 2) + b"\x00\x00"
                      + b"\x2c" + struct.pack("<HHHHB", 0, 0, 32, 32, 0x80) + colour + b"\0\0\0" + lzw)
    return head + b"".join(frames) + b"\x3b"


def jpeg_at_the_pixel_cap(b: Build) -> bytes:
    # 7000×7000 = 49 MP, just under the 50 MP cap: a flat colour is a few hundred KB, a full decode ≈150 MB.
    return jpeg(Image.new("RGB", (7000, 7000), (90, 140, 200)))


def video_4096_square(b: Build) -> bytes:
    return _video(b, "big.mp4", "-f", "lavfi", "-i", "color=c=red:s=4096x4096:r=1", *X264, "-t", "1")


def video_1000_fps(b: Build) -> bytes:
    return _video(b, "fast.mp4", "-f", "lavfi", "-i", "testsrc2=s=64x64:r=1000", *X264, "-t", "1")


def video_real_10_hours(b: Build) -> bytes:
    # A real 10-hour video: 16×16, one frame a minute (600 frames), made in a fraction of a second.
    return _video(b, "ten_hours.mp4", "-f", "lavfi", "-i", "color=c=gray:s=16x16:r=1/60", *X264, "-t", "36000")


# --- playlist tricks ----------------------------------------------------------------------------------------


def hls_playlist(b: Build) -> bytes:
    return (f"#EXTM3U\n#EXT-X-MEDIA-SEQUENCE:0\n#EXT-X-TARGETDURATION:10\n"
            f"#EXTINF:10.0,\n{b.canary_url}/hls/seg0.ts\n"
            f"#EXTINF:10.0,\nfile://{b.secret}\n"
            f"#EXTINF:10.0,\n{b.secret}\n#EXT-X-ENDLIST\n").encode()


def ffconcat_script(b: Build) -> bytes:
    return (f"ffconcat version 1.0\nfile '{b.secret}'\nfile '{b.secret.name}'\n"
            f"file '{b.canary_url}/concat.mp4'\n").encode()


FTYP = struct.pack(">I4s4sI4s4s", 24, b"ftyp", b"isom", 512, b"isom", b"mp42")


def hls_behind_ftyp(b: Build) -> bytes:
    """Passes the sniffer as MP4; only the format whitelist stands between it and the HLS demuxer."""
    return FTYP + b"\n" + hls_playlist(b)


def ffconcat_behind_ftyp(b: Build) -> bytes:
    return FTYP + b"\n" + ffconcat_script(b)


def hls_in_avi(b: Build) -> bytes:
    """The 2017 shape: an AVI whose payload is an HLS playlist (ffmpeg would probe past the RIFF header)."""
    body = hls_playlist(b)
    return b"RIFF" + struct.pack("<I", len(body) + 4) + b"AVI LIST" + struct.pack("<I", len(body)) + body


# --- privacy -----------------------------------------------------------------------------------------------------


def jpeg_gps_camera_xmp_comment(b: Build) -> bytes:
    return jpeg(noise(800, 600), exif=exif_bytes(1), xmp=XMP, comment=f"secret comment {b.marker}".encode())


def heic_gps_camera_xmp(b: Build) -> bytes:
    return _heif(noise(640, 480), exif=exif_bytes(1), xmp=XMP)


def png_text_and_exif(b: Build) -> bytes:
    from PIL import PngImagePlugin

    info = PngImagePlugin.PngInfo()
    info.add_text("Author", f"SecretCam {b.marker}")
    info.add_itxt("XML:com.adobe.xmp", XMP.decode(), zip=True)
    return png(noise(300, 200), pnginfo=info, exif=exif_bytes(1))


def mp4_location_subtitle_data(b: Build) -> bytes:
    srt = b.dir / "subs.srt"
    srt.write_text(f"1\n00:00:00,000 --> 00:00:02,000\nsubtitle {b.marker}\n")
    return _video(b, "private.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25",
                  "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-i", str(srt),
                  "-map", "0:v", "-map", "1:a", "-map", "2:s", *X264, "-c:a", "aac", "-c:s", "mov_text",
                  "-timecode", "01:02:03:04",  # a tmcd data track
                  "-metadata", "location=+39.9042+116.4074/", "-metadata", "location-eng=+39.9042+116.4074/",
                  "-metadata", "creation_time=2024-05-06T07:08:09Z", "-metadata", f"title=title {b.marker}",
                  "-metadata", "make=SecretCam", "-metadata", "model=Model X",
                  "-metadata", f"comment=comment {b.marker}", "-metadata:s:v", f"handler_name=SecretCam {b.marker}",
                  "-t", "2")


def mkv_attachment_subtitle_tags(b: Build) -> bytes:
    srt = b.dir / "subs.srt"
    srt.write_text(f"1\n00:00:00,000 --> 00:00:02,000\nsubtitle {b.marker}\n")
    note = b.dir / "notes.txt"
    note.write_text(f"attachment {b.marker}\n")
    return _video(b, "private.mkv", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25",
                  "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-i", str(srt),
                  "-map", "0:v", "-map", "1:a", "-map", "2:s", *X264, "-c:a", "aac", "-c:s", "srt",
                  "-attach", str(note), "-metadata:s:t", "mimetype=text/plain",
                  "-metadata", "location=+39.9042+116.4074/", "-metadata", "creation_time=2024-05-06T07:08:09Z",
                  "-metadata", f"title=title {b.marker}", "-metadata:s:a", f"title=audio {b.marker}",
                  "-t", "2")


# --- awkward but valid ------------------------------------------------------------------------------------


def cmyk_jpeg(b: Build) -> bytes:
    return jpeg(noise(500, 400).convert("CMYK"))


def png_16bit_rgb(b: Build) -> bytes:
    """48-bit RGB (Pillow cannot write it): red, 16 bits a sample, written by hand."""
    w, h = 300, 200
    row = b"\0" + struct.pack(">HHH", 0xF000, 0x1000, 0x1000) * w
    raw = zlib.compress(row * h)
    return (b"\x89PNG\r\n\x1a\n" + png_chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 16, 2, 0, 0, 0))
            + png_chunk(b"IDAT", raw) + png_chunk(b"IEND", b""))


def png_16bit_grey(b: Build) -> bytes:
    arr = (np.linspace(0, 65535, 400 * 300).reshape(300, 400)).astype(np.uint16)
    return png(Image.fromarray(arr))


def png_1x1(b: Build) -> bytes:
    return png(Image.new("RGB", (1, 1), (10, 200, 30)))


def png_3x4000_strip(b: Build) -> bytes:
    return png(Image.new("RGB", (3, 4000), (10, 200, 30)))


def jpeg_odd_1081x1921(b: Build) -> bytes:
    return jpeg(noise(1081, 1921))


def _rotated(b: Build, degrees: int) -> bytes:
    src = b.dir / "plain.mp4"
    src.write_bytes(small_mp4(b, seconds=1.5, size="320x176", audio=True))
    return _video(b, "rotated.mp4", "-i", str(src), "-c", "copy", "-metadata:s:v:0", f"rotate={degrees}")


def video_rotate_90(b: Build) -> bytes:
    return _rotated(b, 90)


def video_rotate_180(b: Build) -> bytes:
    return _rotated(b, 180)


def video_rotate_270(b: Build) -> bytes:
    return _rotated(b, 270)


def video_vfr(b: Build) -> bytes:
    # Frames at 30 fps for a second, then 5 fps: timestamps kept as they are (variable frame rate).
    return _video(b, "vfr.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=30",
                  "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                  "-vf", "select='lt(n\\,30)+not(mod(n\\,6))'", "-fps_mode", "vfr", *X264, "-c:a", "aac",
                  "-t", "2.5")


def video_no_audio(b: Build) -> bytes:
    return small_mp4(b, seconds=1.5, audio=False)


def audio_only_as_mp4(b: Build) -> bytes:
    return _video(b, "audio.mp4", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "aac",
                  "-t", "2", "-brand", "isom")


def m4a_as_mp4(b: Build) -> bytes:
    return _video(b, "audio.m4a", "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000", "-c:a", "aac",
                  "-t", "2")


def hevc_10bit(b: Build) -> bytes:
    return _video(b, "hevc10.mp4", "-f", "lavfi", "-i", "testsrc2=s=320x240:r=25",
                  "-f", "lavfi", "-i", "sine=frequency=440:sample_rate=48000",
                  "-c:v", "libx265", "-preset", "ultrafast", "-pix_fmt", "yuv420p10le", "-tag:v", "hvc1",
                  "-x265-params", "log-level=error", "-c:a", "aac", "-t", "1.5")


def many_streams(b: Build) -> bytes:
    args = ["-f", "lavfi", "-i", "testsrc2=s=320x240:r=25", "-f", "lavfi", "-i", "color=c=blue:s=160x120:r=25"]
    for i in range(6):
        args += ["-f", "lavfi", "-i", f"sine=frequency={300 + 100 * i}:sample_rate=48000"]
    args += ["-map", "0:v", "-map", "1:v"] + [x for i in range(6) for x in ("-map", f"{2 + i}:a")]
    return _video(b, "many.mp4", *args, *X264, "-c:a", "aac", "-b:a", "32k", "-t", "1.5")


# --- helpers for the recipe and name cases -------------------------------------------------------------------


def plain_photo(b: Build) -> bytes:
    return jpeg(noise(400, 300))


def plain_video(b: Build) -> bytes:
    return small_mp4(b, seconds=1.5)
