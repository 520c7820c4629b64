"""Typed config schema: a plugin's config dataclass is the single source of validation, defaults and docs.

`opt()` wraps `dataclasses.field` and stores the user documentation and constraints in the field's
metadata. `build()` turns a YAML mapping into an instance of the dataclass, converting unit-aware values
(`Duration`, `ByteSize`) and collecting every problem with its key path and line before reporting, the way
Vector's `deny_unknown_fields` structs and Fluent Bit's config maps refuse typos instead of ignoring them.
"""

from __future__ import annotations

import dataclasses
import difflib
import enum
import math
import re
import types
import typing
from collections.abc import Callable, Mapping
from dataclasses import MISSING, dataclass
from typing import Any, Literal, TypeVar, Union, get_args, get_origin, overload

from agent.errors import ConfigError

T = TypeVar("T")

_DURATION_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d)?\s*$")
_DURATION_UNITS = {"ms": 0.001, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0, None: 1.0}
_SIZE_RE = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*([KMGT]i?B|[KMGT]|B)?\s*$", re.IGNORECASE)
_SIZE_UNITS = {
    "b": 1, "k": 1000, "kb": 1000, "kib": 1024, "m": 1000**2, "mb": 1000**2, "mib": 1024**2,
    "g": 1000**3, "gb": 1000**3, "gib": 1024**3, "t": 1000**4, "tb": 1000**4, "tib": 1024**4,
}


@dataclass(frozen=True, slots=True, order=True)
class Duration:
    """A span of time typed in YAML as `500ms`, `10s`, `5m`, `1h`, `1d` (a bare number means seconds)."""

    seconds: float

    @classmethod
    def parse(cls, value: object) -> Duration:
        if isinstance(value, Duration):
            return value
        if isinstance(value, bool):
            raise ValueError(f"expected a duration like 10s, got {value!r}")
        if isinstance(value, int | float):
            if not math.isfinite(value):
                raise ValueError(f"a duration must be a finite number, got {value!r}")
            if value < 0:
                raise ValueError(f"a duration cannot be negative, got {value!r}")
            return cls(float(value))
        if isinstance(value, str):
            if value.strip().startswith("-"):
                raise ValueError(f"a duration cannot be negative, got {value!r}")
            m = _DURATION_RE.match(value)
            if m:
                seconds = float(m.group(1)) * _DURATION_UNITS[m.group(2)]
                if not math.isfinite(seconds):
                    raise ValueError(f"a duration must be a finite number, got {value!r}")
                return cls(seconds)
        raise ValueError(f"expected a duration like 500ms, 10s, 5m or 1h, got {value!r}")

    def __str__(self) -> str:
        s = self.seconds
        for unit, mult in (("d", 86400.0), ("h", 3600.0), ("m", 60.0), ("s", 1.0)):
            if s >= mult and (s / mult).is_integer():
                return f"{int(s / mult)}{unit}"
        return f"{round(s * 1000)}ms" if s < 1 else f"{s}s"


@dataclass(frozen=True, slots=True, order=True)
class ByteSize:
    """A size typed in YAML as `64KiB`, `10MB`, `1GiB` or a bare number of bytes."""

    bytes: int

    @classmethod
    def parse(cls, value: object) -> ByteSize:
        if isinstance(value, ByteSize):
            return value
        if isinstance(value, bool):
            raise ValueError(f"expected a size like 64KiB, got {value!r}")
        if isinstance(value, int) and value >= 0:
            return cls(value)
        if isinstance(value, str):
            m = _SIZE_RE.match(value)
            if m:
                unit = (m.group(2) or "b").lower()
                size = float(m.group(1)) * _SIZE_UNITS[unit]
                if not math.isfinite(size):  # int(inf) would raise OverflowError, a traceback
                    raise ValueError(f"a size must be a finite number, got {value!r}")
                return cls(int(size))
        raise ValueError(f"expected a size like 64KiB or 10MB, got {value!r}")

    def __str__(self) -> str:
        for unit, mult in (("GiB", 1024**3), ("MiB", 1024**2), ("KiB", 1024)):
            if self.bytes >= mult and self.bytes % mult == 0:
                return f"{self.bytes // mult}{unit}"
        return f"{self.bytes}B"


@overload
def opt(
    *, doc: str, ge: float | None = ..., le: float | None = ..., secret: bool = ..., example: str | None = ...
) -> Any: ...
@overload
def opt(
    default: T,
    *,
    doc: str,
    ge: float | None = ...,
    le: float | None = ...,
    secret: bool = ...,
    example: str | None = ...,
) -> T: ...
def opt(
    default: Any = MISSING,
    *,
    doc: str,
    ge: float | None = None,
    le: float | None = None,
    secret: bool = False,
    example: str | None = None,
) -> Any:
    """Declare a config field: its default (none means required), user docs and numeric bounds.

    Mutable defaults (lists, dicts, dataclass instances) are wrapped in a factory so instances never share
    them. `secret=True` fields are redacted in logs and in `logwarden check` output.
    """
    metadata = {"doc": doc, "ge": ge, "le": le, "secret": secret, "example": example}
    if default is MISSING:
        return dataclasses.field(metadata=metadata)
    if isinstance(default, list | dict | set) or (
        dataclasses.is_dataclass(default) and not isinstance(default, Duration | ByteSize)
    ):
        value = default
        return dataclasses.field(
            default_factory=lambda: _copy_default(value), metadata=metadata
        )
    return dataclasses.field(default=default, metadata=metadata)


def _copy_default(value: Any) -> Any:
    if isinstance(value, list):
        return list(value)
    if isinstance(value, dict):
        return dict(value)
    if isinstance(value, set):
        return set(value)
    return dataclasses.replace(value)


LineOf = Callable[[str], int | None]
"""Maps a key path (`pipeline.inputs[0].path`) to the line it was written on, when known."""


class Builder:
    """Converts plain YAML data to typed dataclasses, collecting every error with its location."""

    def __init__(self, file: str | None = None, line_of: LineOf | None = None) -> None:
        self.file = file
        self.line_of: LineOf = line_of or (lambda _path: None)
        self.errors: list[ConfigError] = []

    def error(self, path: str, message: str, hint: str | None = None) -> None:
        self.errors.append(
            ConfigError(message, file=self.file, line=self.line_of(path), key_path=path, hint=hint)
        )

    def build(self, cls: type[T], data: object, path: str, *, ignore: frozenset[str] = frozenset()) -> T | None:
        """Build `cls` from a mapping; returns None (with errors recorded) when it cannot."""
        if not isinstance(data, Mapping):
            self.error(path, f"expected a mapping, got {_kind(data)}")
            return None
        hints = typing.get_type_hints(cls)
        fields = {f.name: f for f in dataclasses.fields(cls)}  # type: ignore[arg-type]
        kwargs: dict[str, Any] = {}
        ok = True
        for key, value in data.items():
            if key in ignore:
                continue
            sub = f"{path}.{key}" if path else str(key)
            if key not in fields:
                close = difflib.get_close_matches(str(key), list(fields), n=1)
                hint = f"did you mean '{close[0]}'?" if close else f"known keys: {', '.join(sorted(fields))}"
                self.error(sub, "unknown key", hint)
                ok = False
                continue
            f = fields[key]
            before = len(self.errors)
            converted = self.convert(hints[key], value, sub)
            if len(self.errors) > before:
                ok = False
                continue
            if not self._check_bounds(f, converted, sub):
                ok = False
                continue
            kwargs[key] = converted
        for name, f in fields.items():
            if name not in kwargs and name not in data and f.default is MISSING and f.default_factory is MISSING:
                self.error(f"{path}.{name}" if path else name, "required key is missing")
                ok = False
        if not ok:
            return None
        try:
            return cls(**kwargs)
        except (ValueError, TypeError) as exc:
            self.error(path, str(exc))
            return None

    def _check_bounds(self, f: dataclasses.Field[Any], value: Any, path: str) -> bool:
        num: float | None = None
        if isinstance(value, Duration):
            num = value.seconds
        elif isinstance(value, ByteSize):
            num = value.bytes
        elif isinstance(value, int | float) and not isinstance(value, bool):
            num = value
        if num is None:
            return True
        ge, le = f.metadata.get("ge"), f.metadata.get("le")
        if ge is not None and num < ge:
            self.error(path, f"must be at least {_bound(value, ge)}, got {value}")
            return False
        if le is not None and num > le:
            self.error(path, f"must be at most {_bound(value, le)}, got {value}")
            return False
        return True

    def convert(self, tp: Any, value: object, path: str) -> Any:
        origin = get_origin(tp)
        if origin in (Union, types.UnionType):
            args = get_args(tp)
            if value is None and type(None) in args:
                return None
            non_none = [a for a in args if a is not type(None)]
            if len(non_none) == 1:
                return self.convert(non_none[0], value, path)
            for a in non_none:
                trial = Builder(self.file, self.line_of)
                out = trial.convert(a, value, path)
                if not trial.errors:
                    return out
            self.error(path, f"expected {_type_name(tp)}, got {value!r}")
            return None
        if origin is Literal:
            choices = get_args(tp)
            if value in choices:
                return value
            close = difflib.get_close_matches(str(value), [str(c) for c in choices], n=1)
            hint = f"did you mean '{close[0]}'?" if close else None
            self.error(path, f"expected one of {', '.join(map(str, choices))}, got {value!r}", hint)
            return None
        if origin is list or origin is tuple:
            (item_tp, *_rest) = get_args(tp) or (Any,)
            items = value if isinstance(value, list) else [value]
            out_list = [self.convert(item_tp, v, f"{path}[{i}]") for i, v in enumerate(items)]
            return tuple(out_list) if origin is tuple else out_list
        if origin is dict:
            key_tp, val_tp = get_args(tp) or (str, Any)
            if not isinstance(value, Mapping):
                self.error(path, f"expected a mapping, got {_kind(value)}")
                return None
            return {
                self.convert(key_tp, k, path): self.convert(val_tp, v, f"{path}.{k}") for k, v in value.items()
            }
        if tp is Any:
            return value
        if tp is Duration or tp is ByteSize:
            try:
                return tp.parse(value)
            except ValueError as exc:
                self.error(path, str(exc))
                return None
        if dataclasses.is_dataclass(tp) and isinstance(tp, type):
            return self.build(tp, value, path)
        if isinstance(tp, type) and issubclass(tp, enum.Enum):
            for member in tp:
                if member.value == value or member.name.lower() == str(value).lower():
                    return member
            self.error(path, f"expected one of {', '.join(str(m.value) for m in tp)}, got {value!r}")
            return None
        if tp is bool:
            if isinstance(value, bool):
                return value
            if isinstance(value, str) and value.lower() in _BOOLS:
                return _BOOLS[value.lower()]
            self.error(path, f"expected true or false, got {value!r}")
            return None
        if tp is int:
            if isinstance(value, int) and not isinstance(value, bool):
                return value
            if isinstance(value, str) and re.fullmatch(r"\s*-?\d+\s*", value):
                return int(value)
            self.error(path, f"expected an integer, got {value!r}")
            return None
        if tp is float:
            number: float | None = None
            if isinstance(value, int | float) and not isinstance(value, bool):
                number = float(value)
            elif isinstance(value, str):
                try:
                    number = float(value)
                except ValueError:
                    pass
            if number is None:
                self.error(path, f"expected a number, got {value!r}")
            elif not math.isfinite(number):  # .nan passes every bound check: refuse it here
                self.error(path, f"expected a finite number, got {value!r}")
            else:
                return number
            return None
        if tp is str:
            if isinstance(value, str):
                return value
            if isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
            self.error(path, f"expected a string, got {_kind(value)}")
            return None
        self.error(path, f"unsupported type {_type_name(tp)}")
        return None


def _bound(value: object, bound: float) -> str:
    """A bound in the unit the value was written in: `10ms`, not `0.01`."""
    if isinstance(value, Duration):
        return str(Duration(float(bound)))
    if isinstance(value, ByteSize):
        return str(ByteSize(int(bound)))
    return f"{bound:g}" if isinstance(bound, float) else str(bound)


_BOOLS = {"true": True, "yes": True, "on": True, "1": True, "false": False, "no": False, "off": False, "0": False}


def _kind(value: object) -> str:
    if value is None:
        return "nothing (null)"
    if isinstance(value, Mapping):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    return f"{type(value).__name__} {value!r}"


def _type_name(tp: Any) -> str:
    origin = get_origin(tp)
    if origin is Literal:
        return " | ".join(repr(a) for a in get_args(tp))
    if origin in (Union, types.UnionType):
        return " | ".join(_type_name(a) for a in get_args(tp))
    if origin in (list, tuple, dict):
        return f"{origin.__name__}[{', '.join(_type_name(a) for a in get_args(tp))}]"
    if tp is type(None):
        return "null"
    return getattr(tp, "__name__", str(tp))


@dataclass(frozen=True, slots=True)
class OptionDoc:
    """One row of `logwarden plugins --describe`: derived from the dataclass, never written twice."""

    name: str
    type: str
    default: str
    required: bool
    doc: str
    secret: bool


def describe(cls: type[Any], prefix: str = "") -> list[OptionDoc]:
    """Document every option of a config dataclass, descending into nested config dataclasses."""
    hints = typing.get_type_hints(cls)
    rows: list[OptionDoc] = []
    for f in dataclasses.fields(cls):
        tp = hints[f.name]
        required = f.default is MISSING and f.default_factory is MISSING
        if f.default is not MISSING:
            default = _render_default(f.default)
        elif f.default_factory is not MISSING:
            default = _render_default(f.default_factory())
        else:
            default = "(required)"
        name = prefix + f.name
        rows.append(
            OptionDoc(name, _type_name(tp), default, required, f.metadata.get("doc", ""), bool(f.metadata.get("secret")))
        )
        inner = [
            a for a in (get_args(tp) or (tp,))
            if dataclasses.is_dataclass(a) and isinstance(a, type) and a not in (Duration, ByteSize)
        ]
        for sub in inner:
            rows.extend(describe(sub, prefix=name + "."))
    return rows


def _render_default(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, enum.Enum):
        return str(value.value)
    if isinstance(value, Duration | ByteSize):
        return str(value)
    if dataclasses.is_dataclass(value):
        return "{…}"
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value) if not isinstance(value, str) else repr(value)


def secret_values(obj: Any) -> list[str]:
    """Every non-empty value of a `secret=True` field in a built config tree, for log redaction."""
    out: list[str] = []
    if dataclasses.is_dataclass(obj) and not isinstance(obj, type):
        for f in dataclasses.fields(obj):
            v = getattr(obj, f.name)
            if f.metadata.get("secret") and isinstance(v, str) and v:
                out.append(v)
            else:
                out.extend(secret_values(v))
    elif isinstance(obj, list | tuple):
        for v in obj:
            out.extend(secret_values(v))
    return out
