"""External tools: the one runner, and (for video) graph building."""

from media_service.ffmpeg.runner import ToolResult, run_tool

__all__ = ["ToolResult", "run_tool"]
