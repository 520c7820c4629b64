"""Helpers shared by the header parsers: cheap timestamp and level normalisation.

Times are parsed only for the shapes that are cheap to recognise (ISO 8601, `yyyy-mm-dd HH:MM:SS,ms`,
HDFS `yymmdd HHMMSS`, syslog `Mon dd HH:MM:SS`); anything else gives None, never an error, because a
header parser must not drop a line over its clock. Times without a zone are read as local time (what a
host writes to its own logs); syslog lines carry no year, so the current year is assumed.
"""

from __future__ import annotations

import math
import re
import time
from datetime import datetime

_MONTHS = {m: i for i, m in enumerate(("jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"), 1)}
_ISO = re.compile(
    r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?\s*(Z|[+-]\d{2}:?\d{2})?$"
)
_HDFS = re.compile(r"(\d{2})(\d{2})(\d{2})\s+(\d{2})(\d{2})(\d{2})$")
_SYSLOG = re.compile(r"([A-Za-z]{3})\s+(\d{1,2})\s+(\d{2}):(\d{2}):(\d{2})$")
_EPOCH = re.compile(r"\d{9,10}(?:\.\d+)?$")

_LEVELS = {
    "TRACE": "TRACE", "TRC": "TRACE", "DEBUG": "DEBUG", "DBG": "DEBUG", "D": "DEBUG", "FINE": "DEBUG",
    "INFO": "INFO", "INF": "INFO", "I": "INFO", "INFORMATION": "INFO", "NOTICE": "NOTICE",
    "WARN": "WARN", "WARNING": "WARN", "WRN": "WARN", "W": "WARN",
    "ERROR": "ERROR", "ERR": "ERROR", "E": "ERROR", "SEVERE": "ERROR",
    "CRIT": "CRITICAL", "CRITICAL": "CRITICAL", "ALERT": "ALERT", "EMERG": "EMERGENCY", "EMERGENCY": "EMERGENCY",
    "FATAL": "FATAL", "F": "FATAL", "PANIC": "FATAL",
}
LEVEL_WORDS = r"TRACE|DEBUG|INFO|NOTICE|WARN(?:ING)?|ERROR|SEVERE|CRIT(?:ICAL)?|ALERT|EMERG(?:ENCY)?|FATAL|PANIC"
"""Level names recognised where a line's level is only guessed (the auto parser)."""


_SEEN_LEVELS: dict[str, str | None] = {}
_SEEN_SECONDS: dict[str, tuple[float, float]] = {}
_SEEN_TAILS: dict[str, tuple[float, float | None]] = {}
_SEEN_MINUTES: dict[str, tuple[float, float]] = {}
_MEMO = 4096
LEVEL_MEMO, SECOND_MEMO, TAIL_MEMO = _SEEN_LEVELS, _SEEN_SECONDS, _SEEN_TAILS
"""The memos, read (never written) by parsers that inline the memo hits of `normalize_level` and
`parse_time` in their per-line loop: a Python call costs more than the lookup it makes. Each memo is
cleared in place, never replaced, so these names stay bound to the live dicts."""
"""Entries per memo below before it starts over: a host writes a handful of level spellings, and lines
in a row share their timestamp's second."""
_ISO_FAST = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")
_ISO_TAIL = re.compile(r"(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")


def normalize_level(text: str | None) -> str | None:
    """Upper-case canonical level names (WARNING → WARN); an unknown word is kept, upper-cased."""
    if not text:
        return None
    level = _SEEN_LEVELS.get(text, "")
    if level != "":
        return level
    word = text.strip().strip("[]<>").upper()
    level = _LEVELS.get(word, word) or None
    if len(_SEEN_LEVELS) >= _MEMO:
        _SEEN_LEVELS.clear()
    _SEEN_LEVELS[text] = level
    return level


def parse_time(text: str | None) -> float | None:
    """Epoch seconds for the common timestamp shapes, or None; never raises.

    A plain ISO 8601 time is two memo lookups: its first 19 characters (the whole second) and the rest
    (fraction and zone) are each remembered once a regex has validated them — datetime and calendar calls
    cost ~20 µs and the regex ~1 µs, and consecutive lines share their second and repeat their fractions.
    """
    if not text:
        return None
    second = _SEEN_SECONDS.get(text[:19])
    if second is not None:
        tail = _SEEN_TAILS.get(text[19:])
        if tail is None:
            tail = _tail(text[19:])
        if tail is not None:
            fraction, offset = tail
            return (second[1] if offset is None else second[0] - offset) + fraction
    m = _ISO_FAST.match(text)
    if m is not None:
        second = _second(m)
        tail = _tail(text[19:])
        if second is None or tail is None:
            return None
        fraction, offset = tail
        return (second[1] if offset is None else second[0] - offset) + fraction
    s = text.strip().strip("[]")
    try:
        m = _ISO.match(s)
        if m:
            frac: str = m.group(7) or "0"
            y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
            dt = datetime(y, mo, d, h, mi, sec)
            zone = m.group(8)
            base = dt.timestamp() if zone is None else _utc(dt, zone)
            return float(base + int(frac) / 10 ** len(frac))
        m = _HDFS.match(s)
        if m:
            y, mo, d, h, mi, sec = (int(g) for g in m.groups())
            return datetime(2000 + y, mo, d, h, mi, sec).timestamp()
        m = _SYSLOG.match(s)
        if m:
            month = _MONTHS.get(m.group(1).lower())
            if month is None:
                return None
            year = time.localtime().tm_year
            h, mi, sec = (int(m.group(i)) for i in (3, 4, 5))
            return datetime(year, month, int(m.group(2)), h, mi, sec).timestamp()
        if _EPOCH.match(s):
            return float(s)
    except (ValueError, OverflowError, OSError):
        return None
    return None


def epoch_number(value: float) -> float | None:
    """A numeric timestamp as epoch seconds, or None when it is not a finite number: JSON readers accept
    NaN, Infinity and integers too large for a float, and a NaN time would break every time window."""
    try:
        seconds = float(value)
    except OverflowError:
        return None
    return seconds if math.isfinite(seconds) else None


def _second(m: re.Match[str]) -> tuple[float, float] | None:
    """(epoch if the wall time is UTC, epoch if it is local time) of a validated ISO second, remembered.

    Built from its minute's epochs (also remembered): a zone's offset only changes on a minute boundary,
    and the datetime/calendar calls are then paid once a minute instead of once a second."""
    sec = int(m.group(6))
    if sec > 59:
        return None
    minute = _SEEN_MINUTES.get(m.string[:16])
    if minute is None:
        try:
            y, mo, d, h, mi = (int(m.group(i)) for i in range(1, 6))
            dt = datetime(y, mo, d, h, mi)
            minute = (_utc(dt, "Z"), dt.timestamp())
        except (ValueError, OverflowError, OSError):
            return None
        if len(_SEEN_MINUTES) >= _MEMO:
            _SEEN_MINUTES.clear()
        _SEEN_MINUTES[m.string[:16]] = minute
    second = (minute[0] + sec, minute[1] + sec)
    if len(_SEEN_SECONDS) >= _MEMO:
        _SEEN_SECONDS.clear()
    _SEEN_SECONDS[m.string[:19]] = second
    return second


def _tail(text: str) -> tuple[float, float | None] | None:
    """(fraction of a second, zone offset in seconds or None for local time) of what follows an ISO second."""
    m = _ISO_TAIL.match(text)
    if m is None:
        return None
    digits, zone = m.groups()
    fraction = int(digits) / 10 ** len(digits) if digits else 0.0
    offset: float | None = None
    if zone is not None:
        offset = _zone_offset(zone)
    if len(_SEEN_TAILS) >= _MEMO:
        _SEEN_TAILS.clear()
    _SEEN_TAILS[text] = (fraction, offset)
    return fraction, offset


def _zone_offset(zone: str) -> float:
    """Seconds east of UTC of `Z`, `+hh:mm` or `-hhmm`."""
    if zone == "Z":
        return 0.0
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    return float(sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60))


def _utc(dt: datetime, zone: str) -> float:
    import calendar

    return float(calendar.timegm(dt.timetuple())) - _zone_offset(zone)


def scalar_text(value: object) -> str:
    """A field value as text (JSON scalars and nested values alike), for `Record.fields`."""
    if isinstance(value, str):
        return value
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return str(value)
    import json

    return json.dumps(value, ensure_ascii=False, separators=(",", ":"))
