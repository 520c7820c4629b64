"""No header: the whole line is the message (for lines that are already bare messages)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import ClassVar

from agent.plugin import Header, PluginContext


@dataclass(frozen=True, slots=True, kw_only=True)
class NoneConfig:
    pass


class NoneParser:
    name: ClassVar[str] = "none"
    config_class: ClassVar[type[NoneConfig]] = NoneConfig

    def __init__(self, config: NoneConfig | None = None, ctx: PluginContext | None = None) -> None:
        self.config = config or NoneConfig()

    def parse(self, raw: str) -> Header | None:
        return Header(message=raw)
