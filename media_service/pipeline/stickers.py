"""A recipe's sticker with its pack's defaults: the one place stills and video take them from."""

from __future__ import annotations

from PIL import Image

from media_service.imaging.overlay import PlacedSticker
from media_service.packs.registry import PackRegistry
from media_service.recipe import StickerSpec


def placed_sticker(registry: PackRegistry, spec: StickerSpec, image: Image.Image | None = None) -> PlacedSticker:
    """``image``: one frame of an animated sticker; its first (or only) frame otherwise."""
    item = registry.stickers[spec.id]
    return PlacedSticker(
        image=registry.sticker_image(spec.id) if image is None else image,
        x=spec.x, y=spec.y,
        scale=spec.scale if spec.scale is not None else item.scale,
        rotation=spec.rotation, opacity=spec.opacity,
        anchor=item.anchor, safe_area=item.safe_area,
    )
