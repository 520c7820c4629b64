"""`logwarden run -c FILE`: the daemon. Exit 78 on an invalid config, 0 after a graceful SIGTERM."""

from __future__ import annotations

import argparse
import signal
from types import FrameType


def add_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("-c", "--config", required=True, help="The YAML config file.")


def run(args: argparse.Namespace) -> int:
    stops = _hold_signals()  # before the imports below: numpy and onnxruntime take most of a second
    from agent.config import ensure_state_dir
    from agent.daemon import Daemon
    from agent.malloc import pin_mmap_threshold, single_arena

    pin_mmap_threshold()
    single_arena()

    daemon = Daemon(args.config)  # installs the daemon's own handlers
    if stops:
        return 0  # stopped before anything started: nothing to drain
    config = daemon.load()  # ConfigError → exit 78 before anything starts
    ensure_state_dir(config)  # an unusable state_dir too, instead of a traceback from the first mkdir
    return daemon.run(config)


def _hold_signals() -> list[int]:
    """Until the daemon's handlers are in place, SIGTERM (a stop right after a start) and SIGHUP (a reload
    right after it) would end the process with the default action, exit -15 or -1 with nothing saved:
    a stop is remembered instead, and a reload ignored, since the config is read after the imports anyway."""
    stops: list[int] = []

    def remember(signum: int, _frame: FrameType | None) -> None:
        stops.append(signum)

    signal.signal(signal.SIGTERM, remember)
    signal.signal(signal.SIGINT, remember)
    signal.signal(signal.SIGHUP, lambda _signum, _frame: None)
    return stops
