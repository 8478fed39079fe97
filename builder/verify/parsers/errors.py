"""The one exception every parser raises for output it cannot read."""

from __future__ import annotations


class ParseError(ValueError):
    """Tool output that is not in the format the parser reads (``tool``: which tool printed it)."""

    def __init__(self, tool: str, message: str) -> None:
        super().__init__(f"{tool}: {message}")
        self.tool = tool
