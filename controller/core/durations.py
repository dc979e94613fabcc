"""Parse and format human durations ("30s", "10m", "2h", "1d", "1h30m").

Used by the policy model, the CLI flags (--horizon, --step, --lead-time) and
the operator's resources, so every place reads durations the same way.
"""

from __future__ import annotations

import re
from datetime import timedelta

_UNITS = {"ms": 0.001, "s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}
_PART = re.compile(r"(\d+(?:\.\d+)?)(ms|s|m|h|d|w)")


def parse_duration(value: str | int | float | timedelta, *, field: str = "duration") -> timedelta:
    """Return ``value`` as a timedelta; raise ValueError naming ``field`` if it is not one.

    Accepts a timedelta, a number of seconds, or a string such as "90s", "10m",
    "2h", "1d", "1h30m" (a bare number in a string is seconds). Negative values
    are rejected.
    """
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, bool):
        raise ValueError(f"{field}: expected a duration such as 30s, 10m, 2h or 1d, got {value!r}")
    elif isinstance(value, int | float):
        seconds = float(value)
    elif isinstance(value, str):
        text = value.strip().lower()
        if re.fullmatch(r"\d+(\.\d+)?", text):
            seconds = float(text)
        else:
            pos, seconds = 0, 0.0
            for match in _PART.finditer(text):
                if match.start() != pos:
                    break
                seconds += float(match.group(1)) * _UNITS[match.group(2)]
                pos = match.end()
            if pos != len(text) or not text:
                raise ValueError(
                    f"{field}: expected a duration such as 30s, 10m, 2h or 1d, got {value!r}"
                )
    else:
        raise ValueError(f"{field}: expected a duration such as 30s, 10m, 2h or 1d, got {value!r}")
    if seconds < 0:
        raise ValueError(f"{field}: must not be negative, got {value!r}")
    return timedelta(seconds=seconds)


def format_duration(value: timedelta) -> str:
    """Format a timedelta compactly: 600 s -> "10m", 5400 s -> "1h30m"."""
    total = round(value.total_seconds())
    if total == 0:
        return "0s"
    out = []
    for unit, size in (("d", 86400), ("h", 3600), ("m", 60), ("s", 1)):
        count, total = divmod(total, size)
        if count:
            out.append(f"{count}{unit}")
    return "".join(out)
