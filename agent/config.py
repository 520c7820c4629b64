"""Load, expand and validate a logwarden YAML config into typed dataclasses.

The shape is Fluent Bit's (`service:` plus `pipeline:` with `inputs`, `detectors`, `outputs`); each plugin
section is validated against that plugin's config dataclass. `${VAR}`, `${VAR:-default}` and
`${VAR:?message}` are expanded in scalar values after YAML parsing, so an expanded value can never change
the document's structure. Every error names the file, the line and the key path; all errors of a file are
collected and reported together.
"""

from __future__ import annotations

import dataclasses
import os
import re
import socket
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml

from agent.alerting.config import AlertsConfig
from agent.errors import ConfigError, ConfigErrors
from agent.plugin import Kind
from agent.registry import PluginError, Registry
from agent.schema import Builder, Duration, opt

# ---------------------------------------------------------------------------------------------------
# service section


@dataclass(frozen=True, slots=True, kw_only=True)
class HttpConfig:
    listen: str = opt("127.0.0.1:2020", doc="Address of the /health, /metrics and /api/v1 endpoint.")

    def __post_init__(self) -> None:
        _host, sep, port = self.listen.rpartition(":")
        if not sep or not port.isdigit() or not 0 <= int(port) <= 65535:
            raise ValueError(f"listen must be host:port, got {self.listen!r}")


@dataclass(frozen=True, slots=True, kw_only=True)
class ServiceConfig:
    state_dir: str = opt("/var/lib/logwarden", doc="Offsets, Drain snapshots, the alert spool and learned models.")
    log_level: Literal["debug", "info", "warning", "error"] = opt("info", doc="Level of the daemon's own log.")
    host: str = opt("", doc="Host name put on alerts; empty means this machine's host name.")
    http: HttpConfig | None = opt(None, doc="The ops endpoint; off when not configured.")
    queue_size: int = opt(
        64, ge=1, doc="Batches held between the inputs and the worker before inputs wait; bounds memory under load."
    )
    batch_size: int = opt(
        256, ge=1,
        doc="Records an input hands downstream at once, at most. Small enough that a batch stays in the CPU "
            "cache through every stage; raising it adds CPU, it does not save any.",
    )
    snapshot_interval: Duration = opt(
        Duration(30.0), ge=0.01, doc="How often Drain snapshots and offsets are saved (at least 10ms)."
    )
    tick_interval: Duration = opt(
        Duration(1.0), ge=0.01, doc="How often timers run (closing time windows, retries); at least 10ms."
    )
    shutdown_timeout: Duration = opt(Duration(10.0), doc="Longest time SIGTERM waits for in-flight work.")
    alerts: AlertsConfig = opt(AlertsConfig(), doc="Alert deduplication, rate limits and delivery retries.")

    def __post_init__(self) -> None:
        if not self.state_dir.strip():
            # An unset ${LOGWARDEN_STATE_DIR} expands to "": state would land in whatever the cwd is.
            raise ValueError("state_dir must not be empty (offsets and the alert spool need a folder)")

    @property
    def hostname(self) -> str:
        return self.host or socket.gethostname()


# ---------------------------------------------------------------------------------------------------
# pipeline sections: the plugin's own config plus the routing keys every plugin of a kind shares


@dataclass(frozen=True, slots=True)
class ParserSection:
    name: str
    config: Any
    drain: Any


@dataclass(frozen=True, slots=True)
class InputSection:
    name: str
    tag: str
    config: Any
    parser: ParserSection
    index: int


@dataclass(frozen=True, slots=True)
class DetectorSection:
    name: str
    match: str
    config: Any
    index: int


@dataclass(frozen=True, slots=True)
class OutputSection:
    name: str
    match: str
    stream: Literal["alerts", "records"]
    config: Any
    index: int


@dataclass(frozen=True, slots=True)
class Config:
    file: str
    service: ServiceConfig
    inputs: list[InputSection] = field(default_factory=list)
    detectors: list[DetectorSection] = field(default_factory=list)
    outputs: list[OutputSection] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    line_of: Callable[[str], int | None] = field(default=lambda _path: None, repr=False, compare=False)
    """The line a key path was written on, for errors found after validation (`ensure_state_dir`)."""


COMMON_KEYS: dict[Kind, dict[str, str]] = {
    Kind.INPUT: {
        "name": "The plugin (e.g. tail).",
        "tag": "Routing tag put on every record of this input; detectors and outputs `match` it.",
        "parser": "Header parser and Drain settings: {name: auto|format|json|logfmt|regex|none, ..., drain: {...}}.",
    },
    Kind.DETECTOR: {"name": "The plugin (e.g. iforest).", "match": "Tag glob of the inputs this detector reads."},
    Kind.OUTPUT: {
        "name": "The plugin (e.g. slack).",
        "match": "Tag glob of the alerts or records this output takes.",
        "stream": "`alerts` (default) or `records` (parsed records, for file and stdout).",
    },
}

# ---------------------------------------------------------------------------------------------------
# ${VAR} expansion

_VAR_RE = re.compile(r"\$\$|\$\{([A-Za-z_][A-Za-z0-9_]*)(?:(:-|:\?)([^}]*))?\}")


def expand_env(text: str, env: Mapping[str, str]) -> tuple[str, list[str], list[str]]:
    """Expand `${VAR}`, `${VAR:-default}`, `${VAR:?message}`; `$$` is a literal `$`.

    Returns the text, errors (unset `:?` variables) and warnings (unset plain variables, which expand to
    an empty string as in Fluent Bit and docker compose).
    """
    errors: list[str] = []
    warnings: list[str] = []

    def sub(m: re.Match[str]) -> str:
        if m.group(0) == "$$":
            return "$"
        name, op, arg = m.group(1), m.group(2), m.group(3) or ""
        value = env.get(name)
        if op == ":-":
            return value if value else arg
        if op == ":?":
            if not value:
                errors.append(f"environment variable {name} is not set: {arg or 'it is required'}")
                return ""
            return value
        if value is None:
            warnings.append(f"environment variable {name} is not set; using an empty string")
            return ""
        return value

    return _VAR_RE.sub(sub, text), errors, warnings


# ---------------------------------------------------------------------------------------------------
# YAML with line numbers


MAX_NODES = 100_000
"""Values one config document may expand to. A real config has hundreds; aliases of aliases (the
"billion laughs" document) expand exponentially and would hang `check` and `run` while eating memory."""

_MERGE_TAG = "tag:yaml.org,2002:merge"
_STANDARD_TAG = "tag:yaml.org,2002:"


class _Located:
    """Plain data from a YAML document plus the line every key path was written on."""

    def __init__(self) -> None:
        self.lines: dict[str, int] = {}
        self.nodes = 0

    def line_of(self, path: str) -> int | None:
        while path:
            if path in self.lines:
                return self.lines[path]
            cut = max(path.rfind("."), path.rfind("["))
            path = path[:cut] if cut > 0 else ""
        return self.lines.get("")


def _to_data(
    node: yaml.Node, path: str, loc: _Located, env: Mapping[str, str], file: str, errors: list[ConfigError],
    warnings: list[str],
) -> Any:
    loc.nodes += 1
    if loc.nodes > MAX_NODES:
        raise ConfigError(
            f"the document expands to more than {MAX_NODES:,} values (aliases of aliases?)",
            file=file, line=node.start_mark.line + 1,
        )
    loc.lines.setdefault(path, node.start_mark.line + 1)
    if not isinstance(node, yaml.ScalarNode) and not node.tag.startswith(_STANDARD_TAG):
        errors.append(ConfigError(f"unsupported YAML tag {node.tag}", file=file, line=node.start_mark.line + 1,
                                  key_path=path or None))
    if isinstance(node, yaml.MappingNode):
        out: dict[str, Any] = {}
        explicit, merged = _mapping_pairs(node, path, file, errors)
        for key_node, value_node in explicit:
            key = str(_to_data(key_node, path, loc, env, file, errors, warnings))
            sub = f"{path}.{key}" if path else key
            loc.lines[sub] = key_node.start_mark.line + 1
            if key in out:
                errors.append(ConfigError("key is set twice", file=file, line=loc.lines[sub], key_path=sub))
            out[key] = _to_data(value_node, sub, loc, env, file, errors, warnings)
        for key_node, value_node in merged:  # `<<: *defaults`: keys written beside it win
            key = str(_to_data(key_node, path, loc, env, file, errors, warnings))
            if key in out:
                continue
            sub = f"{path}.{key}" if path else key
            loc.lines[sub] = key_node.start_mark.line + 1
            out[key] = _to_data(value_node, sub, loc, env, file, errors, warnings)
        return out
    if isinstance(node, yaml.SequenceNode):
        items = []
        for i, item in enumerate(node.value):
            sub = f"{path}[{i}]"
            loc.lines[sub] = item.start_mark.line + 1
            items.append(_to_data(item, sub, loc, env, file, errors, warnings))
        return items
    assert isinstance(node, yaml.ScalarNode)
    try:
        value = yaml.constructor.SafeConstructor().construct_object(node)
    except yaml.YAMLError as exc:  # `!foo bar`, `!!python/name:...`: tags safe YAML does not construct
        problem = getattr(exc, "problem", None) or str(exc)
        errors.append(ConfigError(f"invalid YAML value: {problem}", file=file, line=node.start_mark.line + 1,
                                  key_path=path or None))
        return None
    if isinstance(value, str) and "$" in value:
        expanded, errs, warns = expand_env(value, env)
        line = node.start_mark.line + 1
        errors.extend(ConfigError(e, file=file, line=line, key_path=path) for e in errs)
        warnings.extend(f"{file}:{line}: {path}: {w}" for w in warns)
        if expanded != value and node.style is None:
            # An unquoted ${PORT:-2020} should mean the integer 2020, as if it had been written.
            try:
                resolved = yaml.safe_load(expanded) if expanded else ""
            except yaml.YAMLError:
                resolved = expanded
            value = resolved if isinstance(resolved, str | int | float | bool) and resolved is not None else expanded
        else:
            value = expanded
    return value


Pair = tuple[yaml.Node, yaml.Node]


def _mapping_pairs(
    node: yaml.MappingNode, path: str, file: str, errors: list[ConfigError], depth: int = 0
) -> tuple[list[Pair], list[Pair]]:
    """A mapping's own key/value pairs, and those `<<` merge keys bring in (YAML's merge key, which
    PyYAML's safe_load honours: operators share defaults between sections with it)."""
    explicit: list[Pair] = []
    merged: list[Pair] = []
    for key_node, value_node in node.value:
        if key_node.tag != _MERGE_TAG:
            explicit.append((key_node, value_node))
            continue
        sources = value_node.value if isinstance(value_node, yaml.SequenceNode) else [value_node]
        for source in sources:
            if not isinstance(source, yaml.MappingNode) or depth > 32:
                errors.append(ConfigError("a merge key (<<) takes a mapping or a list of mappings", file=file,
                                          line=key_node.start_mark.line + 1, key_path=path or None))
                continue
            own, inherited = _mapping_pairs(source, path, file, errors, depth + 1)
            merged.extend(own + inherited)
    return explicit, merged


def read_yaml(path: str | Path, env: Mapping[str, str] | None = None) -> tuple[Any, _Located, list[str]]:
    file = str(path)
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError("config file not found", file=file) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError(f"cannot read config file: {exc}", file=file) from None
    try:
        node = yaml.compose(text, Loader=yaml.SafeLoader)
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark
        line = mark.line + 1 if mark is not None else None
        raise ConfigError(f"invalid YAML: {exc.problem}", file=file, line=line) from None
    except yaml.YAMLError as exc:
        raise ConfigError(f"invalid YAML: {exc}", file=file) from None
    loc = _Located()
    if node is None:
        return {}, loc, []
    errors: list[ConfigError] = []
    warnings: list[str] = []
    data = _to_data(node, "", loc, os.environ if env is None else env, file, errors, warnings)
    if errors:
        raise ConfigErrors(errors)
    return data, loc, warnings


# ---------------------------------------------------------------------------------------------------
# validation


Preflight = Callable[[Any], list[tuple[str, str]]]
"""A plugin's optional `preflight(config)`: (key, problem) pairs found by looking outside the config
(a model bundle that does not load, a URL that is not https). Keys starting with `warning:` only warn."""


def load_config(
    path: str | Path, registry: Registry, env: Mapping[str, str] | None = None, *, preflight: bool = True
) -> Config:
    """Read and validate a config; raises ConfigError/ConfigErrors naming file, line and key path."""
    file = str(path)
    data, loc, warnings = read_yaml(path, env)
    return build_config(data, registry, file=file, line_of=loc.line_of, warnings=warnings, preflight=preflight)


def build_config(
    data: Any,
    registry: Registry,
    *,
    file: str = "<config>",
    line_of: Callable[[str], int | None] | None = None,
    warnings: list[str] | None = None,
    preflight: bool = True,
) -> Config:
    b = Builder(file, line_of)
    warnings = list(warnings or [])
    if not isinstance(data, Mapping):
        raise ConfigError("the config must be a mapping with 'service' and 'pipeline'", file=file, line=1)
    for key in data:
        if key not in ("service", "pipeline"):
            b.error(str(key), "unknown top-level key", "expected 'service' or 'pipeline'")
    service = b.build(ServiceConfig, data.get("service") or {}, "service")
    if service is not None and preflight:
        _service_preflight(b, service, warnings)
    pipeline = data.get("pipeline") or {}
    inputs: list[InputSection] = []
    detectors: list[DetectorSection] = []
    outputs: list[OutputSection] = []
    if not isinstance(pipeline, Mapping):
        b.error("pipeline", "expected a mapping with inputs, detectors and outputs")
        pipeline = {}
    for key in pipeline:
        if key not in ("inputs", "detectors", "outputs"):
            b.error(f"pipeline.{key}", "unknown key", "expected inputs, detectors or outputs")
    for kind, section in ((Kind.INPUT, "inputs"), (Kind.DETECTOR, "detectors"), (Kind.OUTPUT, "outputs")):
        items = pipeline.get(section) or []
        if not isinstance(items, list):
            b.error(f"pipeline.{section}", "expected a list of plugin sections")
            continue
        for i, item in enumerate(items):
            path = f"pipeline.{section}[{i}]"
            built = _build_section(b, registry, kind, item, path, i, warnings, preflight)
            if isinstance(built, InputSection):
                inputs.append(built)
            elif isinstance(built, DetectorSection):
                detectors.append(built)
            elif isinstance(built, OutputSection):
                outputs.append(built)
    if not b.errors and not pipeline.get("inputs"):
        b.error("pipeline.inputs", "at least one input is required")
    if b.errors:
        raise ConfigErrors(b.errors)
    assert service is not None
    return Config(file, service, inputs, detectors, outputs, warnings, line_of=b.line_of)


def _service_preflight(b: Builder, service: ServiceConfig, warnings: list[str]) -> None:
    """A state_dir that can never be a folder is an error; one this user cannot write only warns, since
    `check` often runs as someone other than the daemon's user (`run` refuses it: `ensure_state_dir`)."""
    path = "service.state_dir"
    existing = Path(service.state_dir)
    try:
        while not existing.exists() and existing.parent != existing:
            existing = existing.parent
        is_dir = existing.is_dir()
    except OSError as exc:
        b.error(path, f"cannot look at {existing}: {exc.strerror or exc}")
        return
    if not is_dir:
        b.error(path, f"{existing} exists and is not a folder")
    elif not _writable(existing):
        line = b.line_of(path)
        where = f"{b.file}:{line}" if line else f"{b.file}"
        warnings.append(f"{where}: {path}: {existing} is not writable by this user")


def _writable(folder: Path) -> bool:
    try:
        with tempfile.TemporaryFile(dir=folder):
            return True
    except OSError:
        return False


def ensure_state_dir(config: Config) -> Path:
    """Create `service.state_dir` and prove a file can be written there, before anything starts: a
    daemon that finds out at its first snapshot has already read (and will re-read) lines."""
    folder = Path(config.service.state_dir)
    try:
        folder.mkdir(parents=True, exist_ok=True)
        if not _writable(folder):
            with tempfile.TemporaryFile(dir=folder):  # raises the OSError that says why
                pass
    except OSError as exc:
        raise ConfigError(
            f"cannot keep state in {folder}: {exc.strerror or exc}", file=config.file,
            line=config.line_of("service.state_dir"), key_path="service.state_dir",
        ) from None
    return folder


def _build_section(
    b: Builder, registry: Registry, kind: Kind, item: Any, path: str, index: int, warnings: list[str],
    preflight: bool,
) -> InputSection | DetectorSection | OutputSection | None:
    if not isinstance(item, Mapping):
        b.error(path, "expected a mapping with at least 'name'")
        return None
    name = item.get("name")
    if not isinstance(name, str):
        b.error(f"{path}.name", "required key is missing" if name is None else "expected a plugin name")
        return None
    plugin = _plugin(b, registry, kind, name, f"{path}.name")
    if plugin is None:
        return None
    common = set(COMMON_KEYS[kind])
    config = b.build(plugin.config_class, item, path, ignore=frozenset(common))
    if config is None:
        return None
    if preflight:
        _run_preflight(b, plugin, config, path, warnings)
    if kind is Kind.INPUT:
        tag = item.get("tag", name)
        parser = _build_parser(b, registry, item.get("parser"), f"{path}.parser", warnings, preflight)
        if parser is None:
            return None
        return InputSection(name, str(tag), config, parser, index)
    match = item.get("match", "*")
    if not isinstance(match, str):
        b.error(f"{path}.match", "expected a tag glob")
        return None
    if kind is Kind.DETECTOR:
        return DetectorSection(name, match, config, index)
    stream = item.get("stream", "alerts")
    if stream not in ("alerts", "records"):
        b.error(f"{path}.stream", f"expected alerts or records, got {stream!r}")
        return None
    return OutputSection(name, match, stream, config, index)


def _build_parser(
    b: Builder, registry: Registry, item: Any, path: str, warnings: list[str], preflight: bool
) -> ParserSection | None:
    from agent.drain import DrainConfig  # the parse stage's tree settings live beside the algorithm

    item = {} if item is None else item
    if isinstance(item, str):
        item = {"name": item}
    if not isinstance(item, Mapping):
        b.error(path, "expected a mapping like {format: '<Date> <Level> <Content>'} or a parser name")
        return None
    name = item.get("name") or ("format" if "format" in item else "auto")
    plugin = _plugin(b, registry, Kind.PARSER, str(name), f"{path}.name")
    if plugin is None:
        return None
    config = b.build(plugin.config_class, item, path, ignore=frozenset({"name", "drain"}))
    drain = b.build(DrainConfig, item.get("drain") or {}, f"{path}.drain")
    if config is None or drain is None:
        return None
    if preflight:
        _run_preflight(b, plugin, config, path, warnings)
    return ParserSection(str(name), config, drain)


def _plugin(b: Builder, registry: Registry, kind: Kind, name: str, path: str) -> Any:
    try:
        return registry.get(kind, name)
    except PluginError as exc:
        import difflib

        close = difflib.get_close_matches(name, registry.names(kind), n=1)
        hint = f"did you mean '{close[0]}'?" if close else f"known: {', '.join(registry.names(kind))}"
        b.error(path, str(exc), hint)
        return None


def _run_preflight(b: Builder, plugin: Any, config: Any, path: str, warnings: list[str]) -> None:
    check = getattr(plugin, "preflight", None)
    if check is None:
        return
    for key, problem in check(config):
        if key.startswith("warning:"):
            key = key[len("warning:"):]
            sub = f"{path}.{key}" if key else path
            line = b.line_of(sub)
            warnings.append(f"{b.file}:{line}: {sub}: {problem}" if line else f"{b.file}: {sub}: {problem}")
        else:
            b.error(f"{path}.{key}" if key else path, problem)


def redacted(config: Any) -> Any:
    """A plain-data view of a built config with secret fields replaced, for `check --print` and logs."""
    if dataclasses.is_dataclass(config) and not isinstance(config, type):
        out: dict[str, Any] = {}
        for f in dataclasses.fields(config):
            v = getattr(config, f.name)
            out[f.name] = "***" if f.metadata.get("secret") and v else redacted(v)
        return out
    if isinstance(config, list | tuple):
        return [redacted(v) for v in config]
    if isinstance(config, Duration):
        return str(config)
    return config
