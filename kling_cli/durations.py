"""Durations as people read them: "1.0 s", "42 s", "10 min", not "0.981607 s"."""

from __future__ import annotations


def human_duration(seconds: float) -> str:
    """A tenth of a second matters only for short waits; past two minutes, minutes do."""
    if seconds < 9.95:
        return f"{max(seconds, 0.0):.1f} s"
    if seconds < 119.5:
        return f"{seconds:.0f} s"
    if seconds < 3570:
        minutes, rest = divmod(round(seconds), 60)
        return f"{minutes} min {rest} s" if rest else f"{minutes} min"
    hours, rest = divmod(round(seconds / 60), 60)
    return f"{hours} h {rest} min" if rest else f"{hours} h"
