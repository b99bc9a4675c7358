"""Test media made in the tests: photos with orientation, GPS, XMP, comments and colour profiles."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
from PIL import Image, ImageCms

GPS_IFD = 0x8825
XMP = (
    b'<?xpacket begin="" id="W5M0MpCehiHzreSzNTczkc9d"?><x:xmpmeta xmlns:x="adobe:ns:meta/">'
    b'<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description '
    b'xmlns:tiff="http://ns.adobe.com/tiff/1.0/" tiff:Make="SecretCam"/></rdf:RDF></x:xmpmeta>'
    b'<?xpacket end="w"?>'
)


def exif_bytes(orientation: int = 1, *, gps: bool = True) -> bytes:
    exif = Image.Exif()
    exif[0x0112] = orientation
    exif[0x010F] = "SecretCam"  # Make
    exif[0x0110] = "Model X"  # Model
    if gps:
        exif[GPS_IFD] = {1: "N", 2: (39.0, 54.0, 27.0), 3: "E", 4: (116.0, 23.0, 50.0)}
    return exif.tobytes()


def quadrant_image(width: int, height: int) -> Image.Image:
    """Four solid quadrants: red top-left, green top-right, blue bottom-left, white bottom-right.
    Orientation mistakes move colours between quadrants, which a test can see."""
    arr = np.zeros((height, width, 3), dtype=np.uint8)
    hh, hw = height // 2, width // 2
    arr[:hh, :hw] = (220, 30, 30)
    arr[:hh, hw:] = (30, 200, 40)
    arr[hh:, :hw] = (30, 40, 220)
    arr[hh:, hw:] = (240, 240, 240)
    return Image.fromarray(arr)


def grey_image(width: int, height: int, level: int = 128) -> Image.Image:
    return Image.new("RGB", (width, height), (level, level, level))


def save_jpeg(
    img: Image.Image,
    path: Path,
    *,
    orientation: int = 1,
    gps: bool = True,
    comment: bytes | None = b"secret comment",
    xmp: bool = True,
    icc: bytes | None = None,
    quality: int = 92,
) -> Path:
    kwargs: dict[str, object] = {"quality": quality, "exif": exif_bytes(orientation, gps=gps)}
    if comment:
        kwargs["comment"] = comment
    if xmp:
        kwargs["xmp"] = XMP
    if icc:
        kwargs["icc_profile"] = icc
    img.save(path, "JPEG", **kwargs)
    return path


def display_p3_profile() -> bytes:
    """A Display-P3 ICC profile built with LittleCMS through Pillow (D65, P3 primaries, sRGB curve)."""
    # Pillow cannot build arbitrary RGB matrix profiles, so write a minimal ICC v2 matrix/TRC profile.
    return _matrix_profile(
        # P3-D65 primaries adapted to D50 (the ICC PCS), as in Apple's Display P3 profile.
        red=(0.5151, 0.2412, -0.0011),
        green=(0.2920, 0.6922, 0.0419),
        blue=(0.1571, 0.0666, 0.7841),
        description="Display P3",
    )


def _s15(v: float) -> bytes:
    return round(v * 65536).to_bytes(4, "big", signed=True)


def _xyz_tag(x: float, y: float, z: float) -> bytes:
    return b"XYZ " + b"\0" * 4 + _s15(x) + _s15(y) + _s15(z)


def _curve_tag() -> bytes:
    # Parametric curves need v4; a 1024-entry table of the sRGB curve works in v2.
    n = 1024
    xs = np.linspace(0, 1, n)
    ys = np.where(xs <= 0.04045, xs / 12.92, ((xs + 0.055) / 1.055) ** 2.4)
    return (
        b"curv"
        + b"\0" * 4
        + n.to_bytes(4, "big")
        + b"".join(round(float(y) * 65535).to_bytes(2, "big") for y in ys)
    )


def _desc_tag(text: str) -> bytes:
    ascii_ = text.encode("ascii") + b"\0"
    return (
        b"desc"
        + b"\0" * 4
        + len(ascii_).to_bytes(4, "big")
        + ascii_
        + b"\0" * 4
        + b"\0" * 4
        + b"\0" * 2
        + b"\0"
        + b"\0" * 67
    )


def _matrix_profile(
    red: tuple[float, float, float],
    green: tuple[float, float, float],
    blue: tuple[float, float, float],
    description: str,
) -> bytes:
    curve = _curve_tag()
    tags = [
        (b"desc", _desc_tag(description)),
        (b"wtpt", _xyz_tag(0.9642, 1.0, 0.8249)),
        (b"rXYZ", _xyz_tag(*red)),
        (b"gXYZ", _xyz_tag(*green)),
        (b"bXYZ", _xyz_tag(*blue)),
        (b"rTRC", curve),
        (b"gTRC", curve),
        (b"bTRC", curve),
        (b"cprt", b"text" + b"\0" * 4 + b"CC0\0"),
    ]
    offset = 128 + 4 + 12 * len(tags)
    table = b""
    data = b""
    for sig, body in tags:
        while (offset + len(data)) % 4:
            data += b"\0"
        table += sig + (offset + len(data)).to_bytes(4, "big") + len(body).to_bytes(4, "big")
        data += body
    size = offset + len(data)
    header = (
        size.to_bytes(4, "big")
        + b"lcms"
        + bytes([2, 0x10, 0, 0])
        + b"mntr"
        + b"RGB "
        + b"XYZ "
        + b"\0" * 12
        + b"acsp"
        + b"APPL"
        + b"\0" * 4
        + b"\0" * 4
        + b"\0" * 4
        + b"\0" * 8
        + b"\0" * 4
        + _s15(0.9642)
        + _s15(1.0)
        + _s15(0.8249)
        + b"\0" * 4
        + b"\0" * 16
        + b"\0" * 28
    )
    assert len(header) == 128
    profile = header + len(tags).to_bytes(4, "big") + table + data
    ImageCms.ImageCmsProfile(io.BytesIO(profile))  # lcms must accept it
    return profile


def save_heic(img: Image.Image, path: Path, *, orientation: int = 1) -> Path:
    import pillow_heif

    pillow_heif.register_heif_opener()
    img.save(path, "HEIF", quality=90, exif=exif_bytes(orientation))
    return path


def decode(data: bytes) -> Image.Image:
    img = Image.open(io.BytesIO(data))
    img.load()
    return img


def mean_rgb(img: Image.Image, box: tuple[int, int, int, int]) -> tuple[float, float, float]:
    arr = np.asarray(img.convert("RGB").crop(box), dtype=np.float64)
    r, g, b = arr.reshape(-1, 3).mean(axis=0)
    return float(r), float(g), float(b)


def png_bomb(path: Path, side: int = 50_000) -> Path:
    """A real 1-bit PNG of side×side zeros: a few hundred KB on disk, gigapixels when decoded."""
    import struct
    import zlib

    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    row = b"\0" * (1 + (side + 7) // 8)
    comp = zlib.compressobj(9)
    parts = []
    block = row * 1000
    for _ in range(side // 1000):
        parts.append(comp.compress(block))
    parts.append(comp.flush())
    ihdr = struct.pack(">IIBBBBB", side, side, 1, 0, 0, 0, 0)
    path.write_bytes(b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", ihdr) + chunk(b"IDAT", b"".join(parts))
                     + chunk(b"IEND", b""))
    return path


def metadata_markers(data: bytes) -> list[str]:
    """Anything of the source's metadata that survived into a rendition's bytes."""
    found = []
    # Long enough not to turn up by chance in compressed bytes (a bare "GPS" did, in a few MB of H.264); the
    # GPS IFD itself is binary and comes with the "Exif" header.
    for marker in (b"SecretCam", b"Model X", b"secret comment", b"xmpmeta", b"Exif\0\0", b"GPSLatitude",
                   b"Display P3", b"ICC_PROFILE"):
        if marker in data:
            found.append(marker.decode("latin-1"))
    return found
