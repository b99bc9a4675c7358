"""Publishing packs to storage and following them live: versions, rollback, broken archives never served."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from media_service.pack_store import INDEX_KEY, LiveRegistry, PackRejected, PackStore
from media_service.packs.archive import build_zip
from media_service.storage import LocalStorage
from tests.support.packs import PACK_HEADER, cube_text


def look_pack(root: Path, version: str, shift: float, *, broken: bool = False) -> Path:
    pack = root / version / "fresh"
    (pack / "luts").mkdir(parents=True)
    text = cube_text(3, lambda r, g, b: (min(1.0, r + shift), g, b))
    (pack / "luts" / "tint.cube").write_text(text if not broken else text.replace("0.000000", "nan", 1))
    (pack / "pack.toml").write_text(PACK_HEADER.format(id="fresh").replace("1.0.0", version) + """
[[looks]]
id = "tint"
title = { en = "Tint", zh = "色" }
lut = "luts/tint.cube"
""")
    return build_zip(pack, root / f"fresh-{version}.zip")


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


@pytest.fixture()
def store(tmp_path: Path) -> PackStore:
    return PackStore(LocalStorage(tmp_path / "storage", public_base_url="http://x", signing_secret=b"s"))


def red_shift(live: LiveRegistry) -> float:
    return float(live.current().looks["fresh/tint"].lut.table[0, 0, 0, 0])


def test_publish_then_follow_without_restart(store: PackStore, tmp_path: Path) -> None:
    clock = Clock()
    live = LiveRegistry({"looks": []}, store, tmp_path / "cache", refresh_seconds=5, clock=clock)
    assert "fresh/tint" not in live.current().looks
    store.publish(look_pack(tmp_path / "src", "1.0.0", 0.1))
    assert "fresh/tint" not in live.current().looks  # not before the interval has passed
    clock.now = 5
    assert red_shift(live) == pytest.approx(0.1, abs=1e-6)
    assert live.current().looks["fresh/tint"].pack.version == "1.0.0"

    store.publish(look_pack(tmp_path / "src", "1.1.0", 0.3))
    clock.now = 10
    assert red_shift(live) == pytest.approx(0.3, abs=1e-6)
    assert store.read_index()["looks"]["fresh"] == {"current": "1.1.0", "versions": ["1.0.0", "1.1.0"]}

    store.rollback("fresh", "1.0.0")
    clock.now = 15
    assert red_shift(live) == pytest.approx(0.1, abs=1e-6)


def test_broken_pack_is_never_published(store: PackStore, tmp_path: Path) -> None:
    store.publish(look_pack(tmp_path / "src", "1.0.0", 0.1))
    index_before = store.read_index()
    with pytest.raises(PackRejected) as info:
        store.publish(look_pack(tmp_path / "src", "1.2.0", 0.2, broken=True))
    assert any("NaN" in p.problem for p in info.value.problems)
    assert store.read_index() == index_before
    assert not store.storage.list_keys("packs/looks/fresh/1.2.0")


def test_same_version_other_content_refused(store: PackStore, tmp_path: Path) -> None:
    store.publish(look_pack(tmp_path / "a", "1.0.0", 0.1))
    with pytest.raises(PackRejected, match="already published"):
        store.publish(look_pack(tmp_path / "b", "1.0.0", 0.25))


def test_unknown_rollback(store: PackStore) -> None:
    with pytest.raises(PackRejected):
        store.rollback("nope", "1.0.0")


def test_a_broken_refresh_keeps_serving(store: PackStore, tmp_path: Path) -> None:
    clock = Clock()
    live = LiveRegistry({"looks": []}, store, tmp_path / "cache", refresh_seconds=1, clock=clock)
    store.publish(look_pack(tmp_path / "src", "1.0.0", 0.1))
    clock.now = 1
    before = live.current()
    assert "fresh/tint" in before.looks
    # Someone overwrites the stored archive behind the index's back: the refresh fails, the old registry stays.
    index = store.read_index()
    index["looks"]["fresh"]["current"] = "9.9.9"
    index["looks"]["fresh"]["versions"].append("9.9.9")
    store._write_index(index)
    clock.now = 2
    assert live.current() is before
    assert np.isclose(red_shift(live), 0.1)
    assert store.storage.stat(INDEX_KEY) is not None
