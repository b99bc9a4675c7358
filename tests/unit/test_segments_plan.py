"""Where a long video is cut, and how a segment sees the recipe: pure code."""

from __future__ import annotations

from dataclasses import replace

from media_service.pipeline.segments import SegmentPlan, output_frames, plan_segments, shifted_recipe
from media_service.probe import VideoFacts
from media_service.recipe import recipe_from_dict

FACTS = VideoFacts(container="mov,mp4", duration=60.0, width=1080, height=1920, rotation=0, fps=30.0,
                   nominal_fps=30.0, vfr=False, video_codec="h264", pix_fmt="yuv420p", bit_depth=8,
                   color_transfer="bt709", color_primaries="bt709", color_space="bt709", color_range="tv",
                   has_audio=True, audio_codec="aac", audio_channels=2, audio_sample_rate=48000, frames=1800)


def test_segments_are_whole_gops_and_the_last_takes_the_rest() -> None:
    plan = plan_segments(FACTS, recipe_from_dict({}), 10)
    assert plan.frames == 1800 and plan.rungs == ("1080p", "720p", "480p") and plan.has_audio
    assert [(p.first, p.frames) for p in plan.pieces] == [(i * 300, 300) for i in range(6)]
    assert plan.parts == ["s000", "s001", "s002", "s003", "s004", "s005", "audio", "stills"]
    # 11 s rounds to 12 s (six GOPs); a remainder under one GOP joins the segment before it.
    plan = plan_segments(replace(FACTS, duration=37.0), recipe_from_dict({}), 11)
    assert [(p.first, p.frames) for p in plan.pieces] == [(0, 360), (360, 360), (720, 390)]
    assert SegmentPlan.from_dict(plan.to_dict()) == plan


def test_a_fractional_rate_cuts_on_the_one_pass_keyframes() -> None:
    plan = plan_segments(replace(FACTS, fps=29.97, nominal_fps=29.97, duration=30.0), recipe_from_dict({}), 10)
    assert plan.fps == 29.97 and plan.frames == output_frames(30.0, 29.97) == 900
    # One pass forces a keyframe at the first frame with t >= 2n: frame ceil(2n × 29.97).
    assert [p.first for p in plan.pieces] == [0, 300, 600]


def test_silent_video_under_no_music_has_no_audio_part() -> None:
    plan = plan_segments(replace(FACTS, has_audio=False), recipe_from_dict({"aspect": "1:1"}), 10)
    assert "audio" not in plan.parts and plan.rungs == ("1080p", "720p", "480p")
    muted = recipe_from_dict({"music": {"id": "p/t", "original_volume": 0}})
    assert plan_segments(replace(FACTS, has_audio=False), muted, 10).has_audio  # the music is the sound


def test_a_segment_sees_sticker_windows_and_cover_from_its_own_start() -> None:
    recipe = recipe_from_dict({"stickers": [
        {"id": "p/always", "x": 0.5, "y": 0.5},
        {"id": "p/across", "x": 0.5, "y": 0.5, "start": 8.0, "end": 12.0},
        {"id": "p/before", "x": 0.5, "y": 0.5, "end": 5.0},
        {"id": "p/after", "x": 0.5, "y": 0.5, "start": 25.0},
        {"id": "p/open", "x": 0.5, "y": 0.5, "start": 15.0}], "cover": {"time": 12.5}})
    seen = shifted_recipe(recipe, 10.0, 10.0, 60.0)
    assert [(s.id, s.start, s.end) for s in seen.stickers] == [
        ("p/always", None, None), ("p/across", -2.0, 2.0), ("p/open", 5.0, 51.0)]
    assert seen.cover is not None and seen.cover.time == 2.5
