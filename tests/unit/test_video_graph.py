"""The video graph, built with ffmpeg-python, checked by its exact argv (as ffmpeg-python's own tests do).

When the graph changes on purpose, regenerate the golden file with
``UPDATE_GOLDEN=1 .venv/bin/pytest tests/unit/test_video_graph.py`` and review the diff like code.
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest

from media_service.packs import load_registry
from media_service.pipeline import video as vp
from media_service.probe import VideoFacts
from media_service.recipe import recipe_from_dict
from tests.support.packs import write_look_pack, write_music_pack, write_sticker_pack

GOLDEN = Path(__file__).parent / "golden" / "video_argv.json"

FACTS = VideoFacts(container="mp4", duration=75.0, width=1080, height=1920, rotation=0, fps=30.0, nominal_fps=30.0,
                   vfr=False, video_codec="h264", pix_fmt="yuv420p", bit_depth=8, color_transfer="bt709",
                   color_primaries="bt709", color_space="bt709", color_range="tv", has_audio=True,
                   audio_codec="aac", audio_channels=2, audio_sample_rate=48000, frames=2250)
RECIPE = {"aspect": "9:16", "trim": {"start": 3.0, "end": 48.5}, "filter": {"id": "tlooks/warm", "intensity": 0.7},
          "stickers": [{"id": "tstickers/red", "x": 0.5, "y": 0.2, "scale": 0.3, "rotation": 10, "start": 1.0,
                        "end": 6.0}],
          "music": {"id": "tmusic/tone", "offset": 12.0, "volume": 0.8, "original_volume": 0.4, "duck": True,
                    "fade_in": 0.5, "fade_out": 1.5},
          "cover": {"time": 4.2}}


def plan(tmp_path: Path, recipe: dict[str, object], facts: VideoFacts = FACTS) -> list[str]:
    registry = load_registry([write_look_pack(tmp_path / "f")], [write_sticker_pack(tmp_path / "s")],
                             [write_music_pack(tmp_path / "m")])
    work = tmp_path / "work"
    work.mkdir()
    job = vp.VideoJob(source=work / "source", facts=facts, recipe=recipe_from_dict(recipe), registry=registry,
                      workdir=work)
    job.loudness = {"input_i": -20.5, "input_tp": -6.25, "input_lra": 4.5, "input_thresh": -31.0,
                    "target_offset": 0.25}
    for step in vp.PLAN_STEPS:
        if step is not vp.analyse_loudness:
            step(job)
    return job.argv


def test_full_recipe_argv(tmp_path: Path) -> None:
    argv = plan(tmp_path, RECIPE)
    if os.environ.get("UPDATE_GOLDEN"):
        GOLDEN.write_text(json.dumps(argv, indent=1) + "\n")
    assert argv == json.loads(GOLDEN.read_text())


def test_graph_safety(tmp_path: Path) -> None:
    argv = plan(tmp_path, RECIPE)
    # Every input is preceded by the whitelists; the user's file is only ever "source" in the job dir.
    inputs = [i for i, a in enumerate(argv) if a == "-i"]
    assert argv[inputs[0] + 1] == "source"
    for i in inputs:
        window = argv[max(0, i - 12):i]
        assert "-protocol_whitelist" in window and "-format_whitelist" in window
    assert all("/" not in argv[i + 1] for i in inputs)  # only names inside the job's private dir
    graph = argv[argv.index("-filter_complex") + 1]
    assert graph.count("split=6") == 1  # one decode, split to 3 rungs + poster + preview + cover samples
    assert "select=not(mod(n\\,15))[" in graph and "scale=320:568:flags=bicubic+accurate_rnd" in graph  # 2 a second
    assert "lut3d=file=look.cube:interp=tetrahedral" in graph
    assert "sidechaincompress" in graph and "amix" in graph and "loudnorm" in graph
    assert "between(t\\,1.000\\,6.000)" in graph
    assert argv.count("libx264") == 3 and argv.count("tee") == 3


def test_no_edits_stays_in_yuv(tmp_path: Path) -> None:
    graph = plan(tmp_path, {"trim": {"end": 10}})
    filters = graph[graph.index("-filter_complex") + 1]
    assert "gbrp" not in filters and "lut3d" not in filters and "overlay" not in filters


@pytest.mark.parametrize(("space", "matrix"), [("bt709", "709"), ("smpte170m", "170m"), (None, "709")])
def test_yuv_to_rgb_uses_the_source_matrix(tmp_path: Path, space: str | None, matrix: str) -> None:
    from dataclasses import replace

    argv = plan(tmp_path, {"filter": {"id": "tlooks/warm"}, "trim": {"end": 10}}, replace(FACTS, color_space=space))
    assert f"min={matrix}:" in argv[argv.index("-filter_complex") + 1]
