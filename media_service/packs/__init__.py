"""Designer packs: strict manifest and .cube parsing, and the immutable registry built from them."""

from media_service.packs.cube import Lut, fold_intensity, parse_cube
from media_service.packs.registry import Look, PackRegistry, StickerItem, Track, load_registry

__all__ = ["Look", "Lut", "PackRegistry", "StickerItem", "Track", "fold_intensity", "load_registry", "parse_cube"]
