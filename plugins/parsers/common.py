"""Helpers shared by the header parsers: cheap timestamp and level normalisation.

Times are parsed only for the shapes that are cheap to recognise (ISO 8601, `yyyy-mm-dd HH:MM:SS,ms`,
HDFS `yymmdd HHMMSS`, syslog `Mon dd HH:MM:SS`); anything else gives None, never an error, because a
header parser must not drop a line over its clock. Times without a zone are read as local time (what a
host writes to its own logs); syslog lines carry no year, so the current year is assumed.
"""

from __future__ import annotations

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
_SEEN_SECONDS: dict[tuple[str, str | None], float] = {}
_MEMO = 4096
"""Entries per memo below before it starts over: a host writes a handful of level spellings, and lines
in a row share their timestamp's second."""
_ISO_FAST = re.compile(r"(\d{4})-(\d{2})-(\d{2})[T ](\d{2}):(\d{2}):(\d{2})(?:[.,](\d{1,9}))?(Z|[+-]\d{2}:?\d{2})?$")


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

    A plain ISO 8601 time costs one regex match and a memo lookup: the epoch of its whole second is
    remembered (datetime and calendar calls cost ~20 µs, and consecutive lines share their second)."""
    if not text:
        return None
    m = _ISO_FAST.match(text)
    if m is not None:
        memo = (text[:m.end(6)], m.group(8))
        base = _SEEN_SECONDS.get(memo)
        if base is None:
            base = _iso_seconds(m)
            if base is None:
                return None
            if len(_SEEN_SECONDS) >= _MEMO:
                _SEEN_SECONDS.clear()
            _SEEN_SECONDS[memo] = base
        digits = m.group(7)
        return base + int(digits) / 10 ** len(digits) if digits else base
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


def _iso_seconds(m: re.Match[str]) -> float | None:
    try:
        y, mo, d, h, mi, sec = (int(m.group(i)) for i in range(1, 7))
        dt = datetime(y, mo, d, h, mi, sec)
        zone = m.group(8)
        return float(dt.timestamp() if zone is None else _utc(dt, zone))
    except (ValueError, OverflowError, OSError):
        return None


def _utc(dt: datetime, zone: str) -> float:
    import calendar

    seconds = calendar.timegm(dt.timetuple())
    if zone == "Z":
        return float(seconds)
    sign = 1 if zone[0] == "+" else -1
    digits = zone[1:].replace(":", "")
    return float(seconds - sign * (int(digits[:2]) * 3600 + int(digits[2:]) * 60))


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
