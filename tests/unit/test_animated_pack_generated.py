import subprocess
import sys
from pathlib import Path

from PIL import Image

REPO = Path(__file__).resolve().parents[2]


def test_animated_pack_is_what_the_script_makes(tmp_path: Path) -> None:
    subprocess.run([sys.executable, str(REPO / "scripts" / "make_starter_animated.py"), "--out", str(tmp_path)],
                   check=True, timeout=120)
    committed = REPO / "stickers" / "animated"
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(p.name for p in committed.iterdir()
                                                                 if p.name != "README.md")
    for made in tmp_path.iterdir():
        assert made.read_bytes() == (committed / made.name).read_bytes(), made.name
    for png in committed.glob("*.png"):
        with Image.open(png) as img:
            assert img.format == "PNG" and img.n_frames == 16 and img.info.get("loop") == 0
            assert img.mode == "RGBA" and img.getpixel((0, 0))[3] == 0  # type: ignore[index]
