"""`logwarden plugins [--describe KIND.NAME]`: every plugin and its options, derived from its dataclass."""

from __future__ import annotations

import argparse
import inspect

from agent.config import COMMON_KEYS
from agent.plugin import Kind
from agent.registry import PluginError, Registry
from agent.schema import describe


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--describe", metavar="KIND.NAME", help="Show one plugin only (e.g. output.slack).")


def run(args: argparse.Namespace) -> int:
    reg = Registry.default()
    keys = sorted(reg.entries)
    if args.describe:
        if args.describe not in reg.entries:
            print(f"no plugin {args.describe}; known: {', '.join(keys)}")
            return 1
        keys = [args.describe]
    for key in keys:
        kind_name, _, name = key.partition(".")
        kind = Kind(kind_name)
        entry = reg.entries[key]
        try:
            cls = reg.get(kind, name)
        except PluginError as exc:
            print(f"{key}  [unavailable: {exc}]\n")
            continue
        doc = (inspect.getdoc(inspect.getmodule(cls)) or "").split("\n\n")[0].replace("\n", " ")
        origin = "" if entry.origin == "builtin" else f"  [{entry.origin}]"
        print(f"{key}{origin}\n  {doc}")
        for common, text in COMMON_KEYS.get(kind, {}).items():
            if common != "name":
                print(f"    {common:<22} (all {kind.value}s)  {text}")
        for row in describe(cls.config_class):
            secret = " [secret]" if row.secret else ""
            print(f"    {row.name:<22} {row.type} = {row.default}{secret}  {row.doc}")
        print()
    return 0
