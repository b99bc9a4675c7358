"""Every machine-readable error code the service can answer with is in the README's error table."""

from __future__ import annotations

import importlib
import pkgutil
import re
from pathlib import Path

import media_service
from media_service.errors import MediaError

README = Path(__file__).resolve().parents[2] / "README.md"


def _subclasses(cls: type[MediaError]) -> set[type[MediaError]]:
    out = set()
    for sub in cls.__subclasses__():
        out |= {sub, *_subclasses(sub)}
    return out


def test_every_error_code_is_documented() -> None:
    for mod in pkgutil.walk_packages(media_service.__path__, "media_service."):
        importlib.import_module(mod.name)
    codes = {cls.code for cls in _subclasses(MediaError)} | {MediaError.code}
    text = README.read_text()
    table = text[text.index("### Error codes"):]
    table = table[:table.index("\n### ", 1)]
    documented = set(re.findall(r"`([a-z_]+)`", table))
    assert codes - documented == set(), f"add to the README's error table: {sorted(codes - documented)}"
