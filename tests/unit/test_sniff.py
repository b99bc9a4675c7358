import io

import pytest
from PIL import Image

from media_service.imaging.sniff import sniff


def _bytes(fmt: str, **kw: object) -> bytes:
    buf = io.BytesIO()
    Image.new("RGB", (8, 8), (10, 20, 30)).save(buf, fmt, **kw)
    return buf.getvalue()


@pytest.mark.parametrize(("fmt", "expected"), [("JPEG", "jpeg"), ("PNG", "png"), ("GIF", "gif"),
                                               ("WEBP", "webp")])
def test_images_by_bytes(fmt: str, expected: str) -> None:
    found = sniff(_bytes(fmt)[:64])
    assert found is not None and found.kind == "image" and found.format == expected


def test_heic_by_bytes() -> None:
    import pillow_heif

    pillow_heif.register_heif_opener()
    found = sniff(_bytes("HEIF")[:64])
    assert found is not None and found.format == "heif"


def test_mp4_is_video() -> None:
    head = (24).to_bytes(4, "big") + b"ftypisom" + b"\0\0\x02\0" + b"isomiso2"
    found = sniff(head)
    assert found is not None and found.kind == "video"


@pytest.mark.parametrize("head", [b"", b"<html><body>", b"<svg xmlns=", b"%!PS-Adobe-3.0 EPSF",
                                  b"II*\0\x08\0\0\0", b"RIFF\0\0\0\0AVI LIST", b"#EXTM3U\n", b"PK\x03\x04",
                                  b"ffconcat version 1.0\n"])
def test_everything_else_refused(head: bytes) -> None:
    assert sniff(head) is None
