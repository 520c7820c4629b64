"""`logwarden run -c FILE`: the daemon. Exit 78 on an invalid config, 0 after a graceful SIGTERM."""

from __future__ import annotations

import argparse


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="The YAML config file.")


def run(args: argparse.Namespace) -> int:
    from agent.config import ensure_state_dir
    from agent.daemon import Daemon
    from agent.malloc import pin_mmap_threshold, single_arena

    pin_mmap_threshold()
    single_arena()

    daemon = Daemon(args.config)
    config = daemon.load()  # ConfigError → exit 78 before anything starts
    ensure_state_dir(config)  # an unusable state_dir too, instead of a traceback from the first mkdir
    return daemon.run(config)
