"""A look's own preview image, from its pack: served as a small JPEG with the designer's metadata gone."""

from __future__ import annotations

import io
from pathlib import Path

from fastapi.testclient import TestClient
from PIL import Image

from media_service.api import create_app
from media_service.config import Settings
from tests.support.packs import PACK_HEADER, cube_text, write_look_pack


def test_designer_preview_replaces_the_chart(tmp_path: Path) -> None:
    root = write_look_pack(tmp_path / "f")
    pack = root / "withprev"
    pack.mkdir()
    (pack / "id.cube").write_text(cube_text(2))
    exif = Image.Exif()
    exif[0x010F] = "DesignerCam"  # Make
    Image.new("RGB", (1600, 1200), (10, 200, 30)).save(pack / "shot.jpg", exif=exif.tobytes())
    (pack / "pack.toml").write_text(PACK_HEADER.format(id="withprev") + """
[[looks]]
id = "soft"
title = { en = "Soft", zh = "柔" }
lut = "id.cube"
preview = "shot.jpg"
""")
    settings = Settings(data_dir=tmp_path / "d", api_keys="k=o", filters_dirs=[root], stickers_dirs=[],
                        music_dirs=[])
    with TestClient(create_app(settings)) as c:
        items = {i["id"]: i for i in c.get("/v1/filters").json()["items"]}
        own = c.get(items["withprev/soft"]["preview_url"].removeprefix(settings.public_base_url))
        chart = c.get(items["tlooks/warm"]["preview_url"].removeprefix(settings.public_base_url))
    assert own.status_code == chart.status_code == 200 and own.headers["content-type"] == "image/jpeg"
    img = Image.open(io.BytesIO(own.content))
    assert img.size == (640, 480) and not img.getexif() and b"DesignerCam" not in own.content
    r, g, b = img.getpixel((320, 240))  # type: ignore[misc]
    assert g > 180 and r < 40 and b < 60  # the designer's picture, not the generated chart
    assert Image.open(io.BytesIO(chart.content)).size == (320, 240)
