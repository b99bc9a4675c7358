"""What a client asks for: the edit recipe, validated field by field.

Ids are checked against the pack registry separately (``check_ids``) so this module stays pure.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator

from media_service.errors import InvalidRecipe, UnknownPackItem
from media_service.limits import DEFAULT_LIMITS

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}/[a-z0-9][a-z0-9_-]{0,39}$"


class Aspect(StrEnum):
    ORIGINAL = "original"
    PORTRAIT_3_4 = "3:4"
    SQUARE = "1:1"
    LANDSCAPE_4_3 = "4:3"
    STORY_9_16 = "9:16"

    def ratio(self) -> tuple[int, int] | None:
        """Width:height as integers, or None for the source's own aspect."""
        if self is Aspect.ORIGINAL:
            return None
        w, h = self.value.split(":")
        return int(w), int(h)


class _Strict(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, allow_inf_nan=False)


class FilterSpec(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    intensity: float | None = Field(default=None, ge=0.0, le=1.0)


class StickerSpec(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    x: float = Field(ge=0.0, le=1.0)
    y: float = Field(ge=0.0, le=1.0)
    scale: float | None = Field(default=None, ge=0.01, le=1.0)
    rotation: float = Field(default=0.0, ge=-360.0, le=360.0)
    opacity: float = Field(default=1.0, ge=0.0, le=1.0)


class Recipe(_Strict):
    aspect: Aspect = Aspect.ORIGINAL
    filter: FilterSpec | None = None
    stickers: list[StickerSpec] = Field(default_factory=list, max_length=DEFAULT_LIMITS.max_stickers)

    @field_validator("stickers", mode="before")
    @classmethod
    def _cap_before_parsing(cls, value: Any) -> Any:
        # Refuse 10,000 stickers before validating each of them.
        if isinstance(value, list) and len(value) > DEFAULT_LIMITS.max_stickers:
            raise ValueError(f"at most {DEFAULT_LIMITS.max_stickers} stickers")
        return value


def _field_name(loc: tuple[int | str, ...]) -> str:
    out = ""
    for part in loc:
        if isinstance(part, int):
            out += f"[{part}]"
        else:
            out += f".{part}" if out else str(part)
    return out or "recipe"


def parse_recipe(raw: str | bytes | None) -> Recipe:
    """Parse and validate a recipe JSON document; raise InvalidRecipe naming the first bad field."""
    if raw is None or (isinstance(raw, str | bytes) and not raw.strip()):
        return Recipe()
    if len(raw) > DEFAULT_LIMITS.max_recipe_bytes:
        raise InvalidRecipe(f"The recipe is larger than {DEFAULT_LIMITS.max_recipe_bytes} bytes.", field="recipe")
    try:
        data = json.loads(raw)
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InvalidRecipe(f"The recipe is not valid JSON: {exc}", field="recipe") from None
    return recipe_from_dict(data)


def recipe_from_dict(data: Any) -> Recipe:
    if not isinstance(data, dict):
        raise InvalidRecipe("The recipe must be a JSON object.", field="recipe")
    try:
        return Recipe.model_validate(data)
    except ValidationError as exc:
        first = exc.errors()[0]
        field = _field_name(tuple(first["loc"]))
        # pydantic's message only: never echo the client's input back.
        raise InvalidRecipe(f"{field}: {first['msg']}", field=field) from None


class PackCatalog(Protocol):
    def has_look(self, item_id: str) -> bool: ...

    def has_sticker(self, item_id: str) -> bool: ...


def check_ids(recipe: Recipe, catalog: PackCatalog) -> None:
    """Every id in the recipe must name an item that the packs offer."""
    if recipe.filter is not None and not catalog.has_look(recipe.filter.id):
        raise UnknownPackItem(f"filter.id: no look named {recipe.filter.id!r}", field="filter.id")
    for i, sticker in enumerate(recipe.stickers):
        if not catalog.has_sticker(sticker.id):
            raise UnknownPackItem(
                f"stickers[{i}].id: no sticker named {sticker.id!r}", field=f"stickers[{i}].id"
            )
