"""docs/packs.md's worked example, run as written: its manifests and commands must keep working."""

from __future__ import annotations

import re
import shlex
import subprocess
from pathlib import Path

from PIL import Image, ImageDraw

REPO = Path(__file__).resolve().parents[2]
DOC = (REPO / "docs" / "packs.md").read_text(encoding="utf-8")
EXAMPLE = DOC[DOC.index("## Worked example"):]
CLI = str(REPO / ".venv" / "bin" / "media-service")


def manifests() -> dict[str, str]:
    return dict(re.findall(r"`([\w/.-]+/pack\.toml)`:\n\n```toml\n(.*?)```", EXAMPLE, re.S))


def run(argv: list[str], cwd: Path) -> subprocess.CompletedProcess[str]:
    if argv[0] == "media-service":
        argv = [CLI, *argv[1:]]
    return subprocess.run(argv, cwd=cwd, capture_output=True, text=True, timeout=300)


def commands(marker: str) -> list[list[str]]:
    """The lines of the first ```sh block after ``marker``."""
    block = re.search(r"```sh\n(.*?)```", EXAMPLE[EXAMPLE.index(marker):], re.S)
    assert block
    return [shlex.split(line) for line in block.group(1).splitlines() if line.strip()]


def artwork(root: Path) -> None:
    """What the designer brings: the bubble PNG and the track (generated here)."""
    bubble = Image.new("RGBA", (240, 160), (0, 0, 0, 0))
    ImageDraw.Draw(bubble).rounded_rectangle((20, 0, 239, 130), 30, fill=(255, 255, 255, 255))
    ImageDraw.Draw(bubble).polygon([(0, 159), (40, 120), (70, 130)], fill=(255, 255, 255, 255))
    bubble.save(root / "stickers/bubbles/hello.png")
    subprocess.run(["ffmpeg", "-nostdin", "-v", "error", "-y", "-f", "lavfi", "-i",
                    "sine=f=330:d=75,volume=0.5", "-ac", "2", "-c:a", "libvorbis",
                    str(root / "music/night/night-walk.ogg")], check=True, timeout=60)


def test_worked_example_validates_previews_and_builds(tmp_path: Path) -> None:
    for argv in commands("**1. The look.**"):
        assert run(argv, tmp_path).returncode == 0, argv
    found = manifests()
    assert set(found) == {"filters/film/pack.toml", "stickers/bubbles/pack.toml", "music/night/pack.toml"}
    for rel, text in found.items():
        (tmp_path / rel).write_text(text, encoding="utf-8")
    artwork(tmp_path)

    validate, preview = commands("**4. Check and look.**")
    out = run(validate, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    assert "track night/night-walk: 75.0 s" in out.stdout and "1 looks, 1 stickers, 1 tracks; 0 problems" in out.stderr
    out = run(preview, tmp_path)
    assert out.returncode == 0, out.stdout + out.stderr
    with Image.open(tmp_path / "sheet.png") as sheet:
        assert sheet.width > 500 and sheet.height > 500

    for pack in ("filters/film", "stickers/bubbles", "music/night"):
        name = pack.split("/")[1]
        out = run(["media-service", "packs", "build", pack, "-o", f"{name}-1.0.0.zip"], tmp_path)
        assert out.returncode == 0, out.stdout + out.stderr

    # The mistake the example quotes is reported as quoted.
    film = tmp_path / "filters/film/pack.toml"
    film.write_text(film.read_text().replace("intensity = 0.7", "intensity = 7"))
    out = run(validate, tmp_path)
    assert out.returncode == 1
    assert "filters/film/pack.toml:8: looks[0].intensity = 7 is outside 0.0..1.0" in out.stdout


def test_example_recipe_is_a_valid_recipe() -> None:
    from media_service.recipe import parse_recipe

    recipe = re.search(r"```json\n(.*?)```", EXAMPLE, re.S)
    assert recipe
    parsed = parse_recipe(recipe.group(1))
    assert parsed.filter is not None and parsed.filter.id == "film/faded" and parsed.music is not None
