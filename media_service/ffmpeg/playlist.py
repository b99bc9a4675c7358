"""Rewriting the URIs of an HLS playlist (media playlists and the master alike)."""

from __future__ import annotations

import re
from collections.abc import Callable

URI_ATTR = re.compile(r'URI="([^"]+)"')


def rewrite_playlist(text: str, rewrite: Callable[[str], str]) -> str:
    """Every URI line and every URI="…" attribute (EXT-X-MAP, EXT-X-MEDIA) goes through ``rewrite``."""
    out: list[str] = []
    for line in text.splitlines():
        if not line:
            out.append(line)
        elif line.startswith("#"):
            out.append(URI_ATTR.sub(lambda m: f'URI="{rewrite(m.group(1))}"', line))
        else:
            out.append(rewrite(line.strip()))
    return "\n".join(out) + "\n"
