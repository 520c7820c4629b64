"""The registry: built-ins and entry-point plugins through one door, lazily, with shadowing refused."""

from __future__ import annotations

import sys
import textwrap
from collections.abc import Iterator
from pathlib import Path

import pytest

from agent.plugin import Kind
from agent.registry import BUILTINS, PluginError, Registry

PLUGIN_SRC = '''
from dataclasses import dataclass
from typing import Any, ClassVar
from agent.plugin import Sent
from agent.schema import opt

@dataclass(frozen=True, slots=True, kw_only=True)
class PagerConfig:
    routing_key: str = opt(doc="Routing key.", secret=True)

class PagerOutput:
    name: ClassVar[str] = "pager"
    config_class: ClassVar[type[Any]] = PagerConfig
    def __init__(self, config: PagerConfig, ctx: Any) -> None: self.config = config
    def start(self) -> None: pass
    def deliver(self, alerts: Any) -> Any: return Sent()
    def write_records(self, records: Any) -> None: pass
    def stop(self) -> None: pass

class Broken:
    name: ClassVar[str] = "broken"
'''


@pytest.fixture
def installed_plugin(tmp_path: Path) -> Iterator[str]:
    """Install a third-party distribution the way pip lays it out: a module plus a dist-info folder."""
    module = f"lw_test_pager_{tmp_path.name.replace('-', '_')}"
    (tmp_path / f"{module}.py").write_text(PLUGIN_SRC)
    info = tmp_path / "lw_test_pager-1.2.3.dist-info"
    info.mkdir()
    (info / "METADATA").write_text("Metadata-Version: 2.1\nName: lw-test-pager\nVersion: 1.2.3\n")
    (info / "entry_points.txt").write_text(
        textwrap.dedent(f"""\
        [logwarden.plugins]
        output.pager = {module}:PagerOutput
        output.broken = {module}:Broken
        output.slack = {module}:PagerOutput
        input.missing = {module}:Nope
        """)
    )
    sys.path.insert(0, str(tmp_path))
    try:
        yield module
    finally:
        sys.path.remove(str(tmp_path))
        sys.modules.pop(module, None)


def test_entry_point_plugin_is_discovered_and_loaded(installed_plugin: str) -> None:
    reg = Registry.default()
    assert "pager" in reg.names(Kind.OUTPUT)
    assert reg.entries["output.pager"].origin == "lw-test-pager 1.2.3"
    cls = reg.get(Kind.OUTPUT, "pager")
    assert cls.__name__ == "PagerOutput"
    assert cls.__module__ == installed_plugin


def test_entry_point_cannot_shadow_builtin(installed_plugin: str) -> None:
    reg = Registry.default()
    assert reg.entries["output.slack"].origin == "builtin"
    assert any(s.startswith("output.slack from lw-test-pager") for s in reg.shadowed)


def test_plugin_without_methods_is_refused_naming_distribution(installed_plugin: str) -> None:
    reg = Registry.default()
    with pytest.raises(PluginError, match=r"output.broken \(lw-test-pager 1.2.3\) is not a output.*config_class"):
        reg.get(Kind.OUTPUT, "broken")
    with pytest.raises(PluginError, match="failed to load"):
        reg.get(Kind.INPUT, "missing")


def test_allow_list_limits_loading(installed_plugin: str) -> None:
    reg = Registry.default(allow=["output.pager", "input.tail"])
    assert sorted(reg.entries) == ["input.tail", "output.pager"]


def test_unknown_plugin() -> None:
    with pytest.raises(PluginError, match="no detector plugin named 'nope'"):
        Registry.default(entry_points=False).get(Kind.DETECTOR, "nope")


def test_builtin_keys_are_well_formed() -> None:
    kinds = {k.value for k in Kind}
    for key, target in BUILTINS:
        kind, _, name = key.partition(".")
        assert kind in kinds and name
        assert target.startswith("plugins.") and ":" in target
