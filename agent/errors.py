"""Error types that carry *where* something went wrong.

Every error a user can cause (config, model bundle, state file) names the file and, where it exists, the
line and key path, so that `logwarden check` and the daemon's refusal messages can be acted on without a
traceback. Code below the CLI raises these; only the CLI turns them into exit codes.
"""

from __future__ import annotations

EX_CONFIG = 78  # sysexits.h: configuration error; Vector and systemd tooling use the same code.


class LogwardenError(Exception):
    """Base of every error logwarden reports to a user instead of a traceback."""


class ConfigError(LogwardenError):
    """A configuration problem, located by file, line and key path (`pipeline.inputs[0].path`)."""

    def __init__(
        self,
        message: str,
        *,
        file: str | None = None,
        line: int | None = None,
        key_path: str | None = None,
        hint: str | None = None,
    ) -> None:
        self.message = message
        self.file = file
        self.line = line
        self.key_path = key_path
        self.hint = hint
        super().__init__(str(self))

    def __str__(self) -> str:
        where = self.file or "<config>"
        if self.line is not None:
            where += f":{self.line}"
        text = f"{where}: "
        if self.key_path:
            text += f"{self.key_path}: "
        text += self.message
        if self.hint:
            text += f" ({self.hint})"
        return text


class ConfigErrors(LogwardenError):
    """Several config problems found in one pass; the validator reports all of them at once."""

    def __init__(self, errors: list[ConfigError]) -> None:
        self.errors = errors
        super().__init__("\n".join(str(e) for e in errors))


class BundleError(LogwardenError):
    """A model bundle that must not be loaded, with the field that failed and why."""

    def __init__(self, path: str, field: str, reason: str) -> None:
        self.path = path
        self.field = field
        self.reason = reason
        super().__init__(f"{path}: {field}: {reason}")


class StateError(LogwardenError):
    """A state file (snapshot, offsets, spool) that cannot be used; the caller starts fresh and keeps it aside."""

    def __init__(self, path: str, reason: str) -> None:
        self.path = path
        self.reason = reason
        super().__init__(f"{path}: {reason}")
