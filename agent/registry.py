"""Built-in and third-party plugins through one door.

Built-ins are listed as `"module:Class"` strings so a source checkout works without installed metadata;
third parties declare `"<kind>.<name>" = "module:Class"` under the entry-point group `logwarden.plugins`.
Both are imported lazily, only when a config names them, so a broken third-party plugin fails only the
configs that use it. A name already taken is not replaced: the later one is skipped and reported (the way
pluggy refuses to re-register), so nobody silently swaps out `output.slack`.
"""

from __future__ import annotations

import dataclasses
import importlib
import importlib.metadata
from collections.abc import Iterable
from dataclasses import dataclass, field

import structlog

from agent.errors import LogwardenError
from agent.plugin import REQUIRED_METHODS, Kind, PluginClass

log = structlog.get_logger("logwarden.registry")

ENTRY_POINT_GROUP = "logwarden.plugins"

BUILTINS: tuple[tuple[str, str], ...] = (
    ("input.tail", "plugins.inputs.tail:TailInput"),
    ("input.stdin", "plugins.inputs.stdin:StdinInput"),
    ("parser.auto", "plugins.parsers.auto:AutoParser"),
    ("parser.format", "plugins.parsers.loghub_format:FormatParser"),
    ("parser.json", "plugins.parsers.json:JsonParser"),
    ("parser.logfmt", "plugins.parsers.logfmt:LogfmtParser"),
    ("parser.regex", "plugins.parsers.regex:RegexParser"),
    ("parser.none", "plugins.parsers.none:NoneParser"),
    ("detector.iforest", "plugins.detectors.iforest:IForestDetector"),
    ("detector.deeplog", "plugins.detectors.deeplog:DeepLogDetector"),
    ("detector.transformer", "plugins.detectors.transformer:TransformerDetector"),
    ("detector.novelty", "plugins.detectors.novelty:NoveltyDetector"),
    ("detector.volume", "plugins.detectors.volume:VolumeDetector"),
    ("detector.params", "plugins.detectors.params:ParamsDetector"),
    ("output.stdout", "plugins.outputs.stdout:StdoutOutput"),
    ("output.file", "plugins.outputs.file:FileOutput"),
    ("output.webhook", "plugins.outputs.webhook:WebhookOutput"),
    ("output.slack", "plugins.outputs.slack:SlackOutput"),
    ("output.alertmanager", "plugins.outputs.alertmanager:AlertmanagerOutput"),
)


class PluginError(LogwardenError):
    """A plugin that cannot be loaded or does not have the shape of its kind."""


@dataclass(slots=True)
class Entry:
    key: str
    target: str
    origin: str
    """`builtin`, or `<distribution> <version>` for an entry point (named in errors)."""
    loaded: PluginClass | None = None


@dataclass(slots=True)
class Registry:
    entries: dict[str, Entry] = field(default_factory=dict)
    shadowed: list[str] = field(default_factory=list)

    @classmethod
    def default(cls, *, entry_points: bool = True, allow: Iterable[str] | None = None) -> Registry:
        """Built-ins plus installed entry points, optionally limited to an allow-list of keys."""
        reg = cls()
        allowed = set(allow) if allow is not None else None
        for key, target in BUILTINS:
            if allowed is None or key in allowed:
                reg.register(key, target, "builtin")
        if entry_points:
            for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
                if allowed is not None and ep.name not in allowed:
                    continue
                dist = ep.dist
                origin = f"{dist.name} {dist.version}" if dist is not None else "entry point"
                reg.register(ep.name, ep.value, origin)
        return reg

    @classmethod
    def from_classes(cls, *classes: tuple[Kind, PluginClass]) -> Registry:
        """A registry of given classes only: what tests use, independent of what is installed."""
        reg = cls()
        for kind, plugin in classes:
            key = f"{kind.value}.{plugin.name}"
            reg.entries[key] = Entry(key, f"{plugin.__module__}:{plugin.__qualname__}", "given", plugin)
        return reg

    def register(self, key: str, target: str, origin: str) -> None:
        kind, _, name = key.partition(".")
        if kind not in {k.value for k in Kind} or not name:
            log.warning("plugin_key_invalid", key=key, origin=origin)
            return
        if key in self.entries:
            self.shadowed.append(f"{key} from {origin}")
            log.warning("plugin_shadowed", key=key, origin=origin, kept=self.entries[key].origin)
            return
        self.entries[key] = Entry(key, target, origin)

    def names(self, kind: Kind) -> list[str]:
        prefix = kind.value + "."
        return sorted(k[len(prefix):] for k in self.entries if k.startswith(prefix))

    def get(self, kind: Kind, name: str) -> PluginClass:
        key = f"{kind.value}.{name}"
        entry = self.entries.get(key)
        if entry is None:
            raise PluginError(f"no {kind.value} plugin named '{name}'")
        if entry.loaded is None:
            entry.loaded = self._load(kind, entry)
        return entry.loaded

    def _load(self, kind: Kind, entry: Entry) -> PluginClass:
        module_name, _, attr = entry.target.partition(":")
        try:
            module = importlib.import_module(module_name)
            plugin = getattr(module, attr)
        except Exception as exc:  # a third-party import can fail any way; report which distribution
            raise PluginError(f"plugin {entry.key} ({entry.origin}) failed to load: {exc}") from exc
        problems = []
        if not isinstance(getattr(plugin, "name", None), str):
            problems.append("no class attribute 'name'")
        cfg = getattr(plugin, "config_class", None)
        if not (isinstance(cfg, type) and dataclasses.is_dataclass(cfg)):
            problems.append("'config_class' is not a dataclass")
        for method in REQUIRED_METHODS[kind]:
            if not callable(getattr(plugin, method, None)):
                problems.append(f"no method '{method}'")
        if problems:
            raise PluginError(f"plugin {entry.key} ({entry.origin}) is not a {kind.value}: {'; '.join(problems)}")
        return plugin  # type: ignore[no-any-return]
