"""Durations and deadlines in the users' words: "2d", "36h", "1d12h"; dates in the viewer's zone.

How it works: the contracts take every period as seconds of block time and store every
deadline as a unix time in seconds, compared with the certified block timestamp (see
docs/commerce.md, "Time"). ``parse_duration`` turns "2d", "36h", "90m", "45s" or a sum
such as "1d12h" into seconds; ``format_duration`` turns seconds back into "1 day 12
hours". ``format_when`` shows a unix time as a date in the viewer's local time zone
(the TZ environment variable, as for every program) with the time left or since,
measured from the chain's latest block time rather than the local clock: a deadline
passes when a block with a later timestamp is committed, not when the wall clock says
so.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from cli.output import EXIT_USAGE, CliError

#: Seconds per unit letter of a duration.
UNIT_SECONDS = {"d": 86_400, "h": 3_600, "m": 60, "s": 1}
#: Longest duration the CLI accepts (ten years; each contract checks its own, shorter, bound).
MAX_DURATION_S = 3660 * 86_400
#: Longest duration text.
MAX_DURATION_CHARS = 32
_PART = re.compile(r"(\d+)([dhms])")


def parse_duration(text: str, what: str = "duration", minimum: int = 0) -> int:
    """Seconds in ``text``: whole numbers with units d, h, m, s ("14d", "36h", "1d12h")."""
    raw = text.strip().lower().replace(" ", "")
    if len(raw) > MAX_DURATION_CHARS or not raw or _PART.sub("", raw) != "":
        raise CliError(f"{what}: expected a duration such as 14d, 36h, 90m or 1d12h, found {text!r}", EXIT_USAGE)
    seconds = sum(int(n) * UNIT_SECONDS[u] for n, u in _PART.findall(raw))
    if not minimum <= seconds <= MAX_DURATION_S:
        raise CliError(f"{what}: expected {format_duration(minimum)} to {format_duration(MAX_DURATION_S)}, "
                       f"found {format_duration(seconds)}", EXIT_USAGE)
    return seconds


def format_duration(seconds: int) -> str:
    """``seconds`` in the two largest units that matter: "14 days", "1 day 12 hours", "5 minutes"."""
    seconds = abs(int(seconds))
    if seconds == 0:
        return "0 seconds"
    parts = []
    for name, size in (("day", 86_400), ("hour", 3_600), ("minute", 60), ("second", 1)):
        n, seconds = divmod(seconds, size)
        if n:
            parts.append(f"{n} {name}{'s' if n != 1 else ''}")
    return " ".join(parts[:2])


def format_time(unix_s: int) -> str:
    """A unix time as a date and time in the viewer's time zone, with the zone's name."""
    local = datetime.fromtimestamp(unix_s, timezone.utc).astimezone()
    return local.strftime("%Y-%m-%d %H:%M:%S %Z").strip()


def format_when(unix_s: int, now_s: int) -> str:
    """``unix_s`` as a local date plus "in 2 days 3 hours", "5 minutes ago" or "now", from ``now_s``."""
    if not unix_s:
        return "-"
    left = unix_s - now_s
    when = f"in {format_duration(left)}" if left > 0 else f"{format_duration(left)} ago" if left < 0 else "now"
    return f"{format_time(unix_s)} ({when})"


def chain_now(status: dict) -> int:
    """The chain's current time in unix seconds: its latest block's certified timestamp."""
    return int(status["latest_block_time_ms"]) // 1000
