"""`logwarden replay` (not implemented yet)."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    pass


def run(args: argparse.Namespace) -> int:
    from agent.errors import LogwardenError

    raise LogwardenError("'replay' is not implemented yet")
