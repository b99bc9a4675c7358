"""What a client asks for: the edit recipe, validated field by field.

Ids are checked against the pack registry separately (``check_ids``) so this module stays pure.
"""

from __future__ import annotations

import json
from enum import StrEnum
from typing import Any, Protocol

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator, model_validator

from media_service.errors import InvalidRecipe, UnknownPackItem, VideoTooLong
from media_service.limits import DEFAULT_LIMITS

ID_PATTERN = r"^[a-z0-9][a-z0-9_-]{0,39}/[a-z0-9][a-z0-9_-]{0,39}$"
MAX_SECONDS = float(DEFAULT_LIMITS.max_video_seconds)


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
    # Video only: the window (seconds of the result) in which the sticker shows; whole video if absent.
    start: float | None = Field(default=None, ge=0.0, le=MAX_SECONDS)
    end: float | None = Field(default=None, gt=0.0, le=MAX_SECONDS)

    @model_validator(mode="after")
    def _window(self) -> StickerSpec:
        if self.start is not None and self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class TrimSpec(_Strict):
    start: float = Field(default=0.0, ge=0.0, le=3600.0)
    end: float | None = Field(default=None, gt=0.0, le=3600.0)

    @model_validator(mode="after")
    def _order(self) -> TrimSpec:
        if self.end is not None and self.end <= self.start:
            raise ValueError("end must be after start")
        return self


class MusicSpec(_Strict):
    id: str = Field(pattern=ID_PATTERN)
    offset: float = Field(default=0.0, ge=0.0, le=3600.0)
    volume: float = Field(default=1.0, ge=0.0, le=2.0)
    original_volume: float = Field(default=1.0, ge=0.0, le=2.0)
    duck: bool = True
    fade_in: float = Field(default=0.0, ge=0.0, le=10.0)
    fade_out: float = Field(default=0.0, ge=0.0, le=10.0)


class CoverSpec(_Strict):
    time: float = Field(default=0.0, ge=0.0, le=MAX_SECONDS)


class Recipe(_Strict):
    aspect: Aspect = Aspect.ORIGINAL
    filter: FilterSpec | None = None
    stickers: list[StickerSpec] = Field(default_factory=list, max_length=DEFAULT_LIMITS.max_stickers)
    trim: TrimSpec | None = None
    music: MusicSpec | None = None
    cover: CoverSpec | None = None

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
    except RecursionError:  # [[[[…]]]] nested thousands deep
        raise InvalidRecipe("The recipe is nested too deeply.", field="recipe") from None
    except ValueError:  # a number with more digits than Python converts (int_max_str_digits)
        raise InvalidRecipe("The recipe holds a number that is too long.", field="recipe") from None
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

    def has_track(self, item_id: str) -> bool: ...


def check_ids(recipe: Recipe, catalog: PackCatalog) -> None:
    """Every id in the recipe must name an item that the packs offer."""
    if recipe.filter is not None and not catalog.has_look(recipe.filter.id):
        raise UnknownPackItem(f"filter.id: no look named {recipe.filter.id!r}", field="filter.id")
    for i, sticker in enumerate(recipe.stickers):
        if not catalog.has_sticker(sticker.id):
            raise UnknownPackItem(
                f"stickers[{i}].id: no sticker named {sticker.id!r}", field=f"stickers[{i}].id"
            )
    if recipe.music is not None and not catalog.has_track(recipe.music.id):
        raise UnknownPackItem(f"music.id: no track named {recipe.music.id!r}", field="music.id")


def check_for_photo(recipe: Recipe) -> None:
    """Video-only fields on a photo are a client mistake worth naming, not something to ignore."""
    for name in ("trim", "music", "cover"):
        if getattr(recipe, name) is not None:
            raise InvalidRecipe(f"{name}: only videos have {name}", field=name)
    for i, s in enumerate(recipe.stickers):
        if s.start is not None or s.end is not None:
            raise InvalidRecipe(f"stickers[{i}]: start/end apply only to videos", field=f"stickers[{i}].start")


def output_window(recipe: Recipe, source_duration: float, max_seconds: float) -> tuple[float, float]:
    """(start, duration) of the result in the source's time; refuses a result longer than ``max_seconds``
    (a long source needs a trim: it is never cut silently) and times outside the result."""
    start = recipe.trim.start if recipe.trim else 0.0
    end = recipe.trim.end if recipe.trim and recipe.trim.end is not None else source_duration
    end = min(end, source_duration)
    if start >= source_duration:
        raise InvalidRecipe(f"trim.start: {start:g} s is past the end of the video ({source_duration:.2f} s)",
                            field="trim.start")
    duration = end - start
    if duration > max_seconds + 0.05:
        raise VideoTooLong(
            f"The result would be {duration:.1f} s; videos are at most {max_seconds:g} s. "
            "Send a trim (start/end) to choose the part to keep.", field="trim")
    if duration < 0.5:
        raise InvalidRecipe("trim: the result must be at least 0.5 s long", field="trim")
    if recipe.cover is not None and recipe.cover.time >= duration:
        raise InvalidRecipe(f"cover.time: {recipe.cover.time:g} s is past the end of the result ({duration:.2f} s)",
                            field="cover.time")
    for i, s in enumerate(recipe.stickers):
        if s.start is not None and s.start >= duration:
            raise InvalidRecipe(f"stickers[{i}].start: past the end of the result ({duration:.2f} s)",
                                field=f"stickers[{i}].start")
    return start, min(duration, max_seconds)
