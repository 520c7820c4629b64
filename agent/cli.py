"""The `logwarden` command: one module per subcommand under `agent/commands/`.

Subcommand modules are imported lazily, so `logwarden check` never pays for what `train` imports. A
`LogwardenError` becomes a one-paragraph message and an exit code; any other exception is a bug and keeps
its traceback.
"""

from __future__ import annotations

import argparse
import importlib
import sys
from collections.abc import Sequence

from agent import __version__
from agent.errors import EX_CONFIG, BundleError, ConfigError, ConfigErrors, LogwardenError

COMMANDS: dict[str, str] = {
    "run": "Run the daemon on a config file.",
    "check": "Validate a config file (exit 0 when valid, 78 when not).",
    "plugins": "List plugins and their options.",
    "demo": "Generate a log, run the pipeline with the shipped model, inject an incident, print alerts.",
    "replay": "Run the configured pipeline over files as fast as possible.",
    "parse": "Mine templates from log lines with the Drain tree.",
    "train": "Train a detector and write a model bundle.",
    "score": "Score sessions or log windows with a model bundle.",
    "evaluate": "Precision, recall, F1, ROC-AUC of a bundle on labelled sessions, with an optional report.",
    "generate": "Write a synthetic microservice log with labelled incidents.",
}


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="logwarden",
        description="Tail logs, mine templates with Drain, score windows with ONNX models, alert with evidence.",
    )
    parser.add_argument("--version", action="version", version=f"logwarden {__version__}")
    sub = parser.add_subparsers(dest="command", metavar="COMMAND")
    for name, help_text in COMMANDS.items():
        p = sub.add_parser(name, help=help_text, description=help_text)
        p.set_defaults(command=name)
        module = importlib.import_module(f"agent.commands.{name}")
        module.add_arguments(p)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.command:
        parser.print_help()
        return 2
    module = importlib.import_module(f"agent.commands.{args.command}")
    try:
        code: int = module.run(args)
    except (ConfigError, ConfigErrors) as exc:
        print(f"logwarden: invalid configuration:\n{_indent(str(exc))}", file=sys.stderr)
        return EX_CONFIG
    except BundleError as exc:
        print(f"logwarden: model bundle refused: {exc}", file=sys.stderr)
        return 65
    except LogwardenError as exc:
        print(f"logwarden: {exc}", file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 130
    except BrokenPipeError:
        return 0
    return code


def _indent(text: str) -> str:
    return "\n".join("  " + line for line in text.splitlines())


if __name__ == "__main__":
    sys.exit(main())
