"""`logwarden check -c FILE`: validate everything `run` would, start nothing.

Exit 0 when valid, 78 (EX_CONFIG) when not. Secret values are never printed: `--print` shows the resolved
config with secret fields replaced by `***`.
"""

from __future__ import annotations

import argparse
import json
import sys

from agent.config import load_config, redacted
from agent.registry import Registry


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="The YAML config file.")
    p.add_argument("--print", action="store_true", dest="print_config", help="Print the resolved config (secrets redacted).")


def run(args: argparse.Namespace) -> int:
    config = load_config(args.config, Registry.default())
    for w in config.warnings:
        print(f"warning: {w}", file=sys.stderr)
    if args.print_config:
        view = {
            "service": redacted(config.service),
            "inputs": [{"name": s.name, "tag": s.tag, **redacted(s.config),
                        "parser": {"name": s.parser.name, **redacted(s.parser.config)}} for s in config.inputs],
            "detectors": [{"name": s.name, "match": s.match, **redacted(s.config)} for s in config.detectors],
            "outputs": [{"name": s.name, "match": s.match, "stream": s.stream, **redacted(s.config)}
                        for s in config.outputs],
        }
        print(json.dumps(view, indent=2, default=str))
    print(
        f"{args.config}: configuration is valid "
        f"({len(config.inputs)} inputs, {len(config.detectors)} detectors, {len(config.outputs)} outputs)"
    )
    return 0
