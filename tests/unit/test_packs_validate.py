"""`media-service packs validate`: every problem at once, each with its file and line; exit status for CI."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from PIL import Image

from media_service.packs.validate import validate
from tests.support.packs import PACK_HEADER, cube_text, write_look_pack, write_music_pack

REPO = Path(__file__).resolve().parents[2]


def broken_packs(root: Path) -> Path:
    looks = root / "bad-looks"
    (looks / "luts").mkdir(parents=True)
    (looks / "luts" / "ok.cube").write_text(cube_text(2))
    (looks / "luts" / "nan.cube").write_text("LUT_3D_SIZE 2\n0 0 0\nnan 0 0\n" + "0 0 0\n" * 6)
    (looks / "luts" / "short.cube").write_text("LUT_3D_SIZE 2\n" + "0 0 0\n" * 7)
    (looks / "pack.toml").write_text(PACK_HEADER.format(id="bad-looks") + """
[[looks]]
id = "ok"
title = { en = "Fine", zh = "好" }
lut = "luts/ok.cube"

[[looks]]
id = "nan"
title = { en = "NaN", zh = "坏" }
lut = "luts/nan.cube"

[[looks]]
id = "short"
title = { en = "Short", zh = "短" }
lut = "luts/short.cube"

[[looks]]
id = "ok"
title = { en = "Again", zh = "重" }
lut = "luts/ok.cube"
intensity = 3
""")
    stickers = root / "bad-stickers"
    stickers.mkdir()
    Image.new("RGB", (64, 64), (255, 0, 0)).save(stickers / "opaque.png")
    (stickers / "pack.toml").write_text(PACK_HEADER.format(id="bad-stickers") + """
[[stickers]]
id = "opaque"
title = { en = "Opaque", zh = "不透明" }
file = "opaque.png"
""")
    music = root / "quiet"
    music.mkdir()
    subprocess.run(["ffmpeg", "-nostdin", "-loglevel", "error", "-y", "-f", "lavfi", "-i",
                    "anullsrc=r=48000:cl=stereo", "-t", "6", "-c:a", "libvorbis", str(music / "silence.ogg")],
                   check=True)
    (music / "pack.toml").write_text(PACK_HEADER.format(id="quiet") + """
[[tracks]]
id = "silence"
title = { en = "Silence", zh = "静" }
artist = "nobody"
file = "silence.ogg"
license = "CC0-1.0"
source = "generated"
""")
    return root


def test_every_problem_at_once(tmp_path: Path) -> None:
    registry, problems = validate([broken_packs(tmp_path)])
    found = {(Path(p.path).name, p.line, p.problem.split(":")[0] if "cube" in p.path else p.problem)
             for p in problems}
    messages = " | ".join(f"{Path(p.path).name}:{p.line}: {p.problem}" for p in problems)
    assert len(problems) == 5, messages
    assert ("nan.cube", 3, "table row") in found
    assert any(p.path.endswith("short.cube") and "needs 8 rows, found 7" in p.problem for p in problems)
    assert any(p.path.endswith("bad-looks/pack.toml") and p.line == 23 and "duplicate id 'ok'" in p.problem
               for p in problems)
    assert any(p.path.endswith("bad-stickers/pack.toml") and p.line == 8 and "alpha" in p.problem for p in problems)
    assert any(p.path.endswith("quiet/pack.toml") and "silent" in p.problem for p in problems)
    assert set(registry.looks) == {"bad-looks/ok"}  # the good item still loads


def test_cli_exit_status(tmp_path: Path) -> None:
    good = write_music_pack(write_look_pack(tmp_path / "good"))
    ok = subprocess.run([sys.executable, "-m", "media_service.cli", "packs", "validate", str(good)],
                        capture_output=True, text=True, timeout=120)
    assert ok.returncode == 0, ok.stdout + ok.stderr
    bad = subprocess.run([sys.executable, "-m", "media_service.cli", "packs", "validate",
                          str(broken_packs(tmp_path / "bad"))], capture_output=True, text=True, timeout=120)
    assert bad.returncode == 1
    assert "bad-looks/luts/nan.cube:3: table row: NaN or infinity is not allowed" in bad.stdout
    assert "5 problems" in bad.stderr


def test_repo_packs_are_valid() -> None:
    """Every pack in the repository, validated the way CI and designers do."""
    registry, problems = validate([REPO / "filters", REPO / "stickers", REPO / "music"])
    assert problems == []
    assert len(registry.looks) >= 8 and len(registry.stickers) >= 12 and len(registry.tracks) >= 3
