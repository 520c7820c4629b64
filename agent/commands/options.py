"""Checks of the options several subcommands share, so a bad one is a one-line reason, not a traceback.

`train`, `score` and `parse` hand `--log-format` and `--multiline` to the parse stage deep inside a
corpus loader; checked there, a format without `<Content>` or an unbalanced regex surfaced as a
ValueError or re.error traceback after the bundle had been opened.
"""

from __future__ import annotations

import re

from agent.errors import LogwardenError


def check_log_options(log_format: str | None, multiline: str | None = None) -> None:
    if log_format is not None:
        from plugins.parsers.loghub_format import compile_format

        try:
            compile_format(log_format)
        except ValueError as exc:
            raise LogwardenError(f"--log-format: {exc}") from None
    if multiline is not None:
        try:
            re.compile(multiline)
        except re.error as exc:
            raise LogwardenError(f"--multiline: not a valid regular expression: {exc}") from None
