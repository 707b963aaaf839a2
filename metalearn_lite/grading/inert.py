"""Make text safe to show: Markdown/HTML feedback and terminal logs (the grader's parent side).

``markdown_text(value)``: the text renders as itself in Markdown and HTML: ``& < >`` become
entities, every Markdown punctuation character is backslash-escaped, line breaks and
control or invisible formatting characters (bidi overrides, zero-width) are replaced, and
the length is capped. Used on every value the feedback interpolates (student id, file
name, reasons, comparison messages), even those the parent built itself.

``log_text(value)``: what a terminal shows as plain text: ANSI/VT escape sequences (CSI,
OSC, DCS, two-byte ESC forms) are removed, every other control character except
newline and tab becomes ``?`` (a carriage return becomes a newline, so a line cannot be
overwritten), as do bidi overrides and other invisible formatting characters.
"""
from __future__ import annotations

import re
import unicodedata

__all__ = ["markdown_text", "log_text"]

_MD_SPECIAL = re.compile(r"([\\`*_{}\[\]()#+\-.!|~:\"'$=^])")
# ESC [ ... final | ESC ] ... BEL/ST | ESC P/X/^/_ ... ST | ESC + one char; and the 8-bit CSI/OSC.
_ANSI = re.compile(
    r"\x1b\[[0-?]*[ -/]*[@-~]?"
    r"|\x1b[\]PX^_][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
    r"|\x1b[ -/]*[0-~]?"
    r"|\x9b[0-?]*[ -/]*[@-~]?"
    r"|[\x90\x9d\x98\x9e\x9f][^\x07\x1b\x9c]*(?:\x07|\x1b\\|\x9c)?"
)


def _is_invisible(ch: str) -> bool:
    category = unicodedata.category(ch)
    return category in ("Cc", "Cf", "Cs", "Co", "Cn", "Zl", "Zp")


def markdown_text(value, limit: int = 300) -> str:
    """``value`` as inert Markdown/HTML text, at most ``limit`` characters of it."""
    text = str(value)
    if len(text) > limit:
        text = text[:limit] + "..."
    out = []
    for ch in text:
        if ch in "\n\r\t":
            out.append(" ")
        elif _is_invisible(ch):
            out.append("?")
        elif ch == "&":
            out.append("&amp;")
        elif ch == "<":
            out.append("&lt;")
        elif ch == ">":
            out.append("&gt;")
        else:
            out.append(ch)
    return _MD_SPECIAL.sub(r"\\\1", "".join(out))


def log_text(value: str) -> str:
    """``value`` without terminal escape sequences or other control characters."""
    text = _ANSI.sub("", value.replace("\r\n", "\n").replace("\r", "\n"))
    return "".join(ch if ch in "\n\t" or not _is_invisible(ch) else "?" for ch in text)
