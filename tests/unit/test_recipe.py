import json

import pytest

from media_service.errors import InvalidRecipe, UnknownPackItem
from media_service.recipe import Aspect, check_ids, parse_recipe


class Catalog:
    def has_look(self, item_id: str) -> bool:
        return item_id == "starter/warm"

    def has_sticker(self, item_id: str) -> bool:
        return item_id == "starter/heart"


def test_full_recipe_parses() -> None:
    recipe = parse_recipe(json.dumps({
        "aspect": "3:4",
        "filter": {"id": "starter/warm", "intensity": 0.8},
        "stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.3, "scale": 0.25, "rotation": -12,
                      "opacity": 1.0}],
    }))
    assert recipe.aspect is Aspect.PORTRAIT_3_4
    assert recipe.aspect.ratio() == (3, 4)
    assert recipe.filter is not None and recipe.filter.intensity == 0.8
    assert recipe.stickers[0].rotation == -12
    check_ids(recipe, Catalog())


@pytest.mark.parametrize("raw", [None, "", "  ", "{}"])
def test_empty_recipe_means_original(raw: str | None) -> None:
    recipe = parse_recipe(raw)
    assert recipe.aspect is Aspect.ORIGINAL and recipe.filter is None and recipe.stickers == []


@pytest.mark.parametrize(
    ("doc", "field"),
    [
        ({"aspect": "2:3"}, "aspect"),
        ({"filter": {"id": "starter/warm", "intensity": 1.5}}, "filter.intensity"),
        ({"filter": {"id": "starter/warm", "intensity": -0.1}}, "filter.intensity"),
        ({"filter": {"id": "../etc/passwd"}}, "filter.id"),
        ({"filter": {"id": "starter/warm;drawtext=x"}}, "filter.id"),
        ({"stickers": [{"id": "starter/heart", "x": 1.2, "y": 0.5}]}, "stickers[0].x"),
        ({"stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.5, "scale": 0}]}, "stickers[0].scale"),
        ({"stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.5, "rotation": 720}]}, "stickers[0].rotation"),
        ({"stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.5, "opacity": 2}]}, "stickers[0].opacity"),
        ({"stickers": [{"id": "starter/heart", "y": 0.5}]}, "stickers[0].x"),
        ({"stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.5, "colour": "red"}]}, "stickers[0].colour"),
        ({"stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.5}]} | {"extra": 1}, "extra"),
        ({"stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.5}] * 21}, "stickers"),
        ({"stickers": "heart"}, "stickers"),
    ],
)
def test_bad_fields_are_named(doc: dict[str, object], field: str) -> None:
    with pytest.raises(InvalidRecipe) as info:
        parse_recipe(json.dumps(doc))
    assert info.value.extra["field"] == field
    assert info.value.http_status == 422


def test_ten_thousand_stickers_refused_fast() -> None:
    doc = {"stickers": [{"id": "starter/heart", "x": 0.5, "y": 0.5}] * 10_000}
    raw = json.dumps(doc)
    with pytest.raises(InvalidRecipe):
        parse_recipe(raw)


def test_nan_and_infinity_refused() -> None:
    with pytest.raises(InvalidRecipe):
        parse_recipe('{"filter": {"id": "starter/warm", "intensity": NaN}}')
    with pytest.raises(InvalidRecipe):
        parse_recipe('{"stickers": [{"id": "starter/heart", "x": Infinity, "y": 0.5}]}')


@pytest.mark.parametrize("raw", ["not json", "[1, 2]", '"3:4"', "{"])
def test_not_an_object(raw: str) -> None:
    with pytest.raises(InvalidRecipe) as info:
        parse_recipe(raw)
    assert info.value.extra["field"] == "recipe"


def test_unknown_ids_are_named() -> None:
    with pytest.raises(UnknownPackItem) as info:
        check_ids(parse_recipe('{"filter": {"id": "starter/nope"}}'), Catalog())
    assert info.value.extra["field"] == "filter.id"
    recipe = parse_recipe(json.dumps({"stickers": [{"id": "starter/heart", "x": 0, "y": 0},
                                                   {"id": "other/heart", "x": 0, "y": 0}]}))
    with pytest.raises(UnknownPackItem) as info:
        check_ids(recipe, Catalog())
    assert info.value.extra["field"] == "stickers[1].id"
