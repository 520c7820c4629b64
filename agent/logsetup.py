"""Configure structlog once, when the CLI starts: JSON lines under systemd, a readable console on a TTY.

This is the one place that touches global logging state. A redaction processor replaces every value of a
`secret=True` config field wherever it appears in an event, so a webhook URL never reaches the journal.
"""

from __future__ import annotations

import logging
import sys
from collections.abc import MutableMapping
from typing import Any

import structlog

_secrets: list[str] = []


def set_secrets(values: list[str]) -> None:
    """Replace the list of strings redacted from every log event (called at start and on reload)."""
    _secrets[:] = sorted({v for v in values if len(v) >= 4}, key=len, reverse=True)


def redact(text: str) -> str:
    for s in _secrets:
        if s in text:
            text = text.replace(s, "***")
    return text


def _redact_processor(_logger: Any, _name: str, event: MutableMapping[str, Any]) -> MutableMapping[str, Any]:
    if _secrets:
        for key, value in list(event.items()):
            if isinstance(value, str):
                event[key] = redact(value)
            elif value is not None and not isinstance(value, int | float | bool):
                text = str(value)
                red = redact(text)
                if red != text:
                    event[key] = red
    return event


def configure(level: str = "info", *, json: bool | None = None, stream: Any = None) -> None:
    out = stream or sys.stderr
    if json is None:
        json = not out.isatty()
    renderer: Any = structlog.processors.JSONRenderer() if json else structlog.dev.ConsoleRenderer(colors=False)
    structlog.configure(
        processors=[
            structlog.contextvars.merge_contextvars,
            structlog.processors.add_log_level,
            structlog.processors.TimeStamper(fmt="iso", utc=True),
            _redact_processor,
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(logging.getLevelName(level.upper())),
        logger_factory=structlog.PrintLoggerFactory(file=out),
        cache_logger_on_first_use=False,
    )
