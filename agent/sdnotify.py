"""The systemd notify protocol, without a dependency: one datagram to `$NOTIFY_SOCKET`.

`READY=1` is sent once config, state and the first scan are done; `WATCHDOG=1` only while the pipeline
makes progress, so a wedged worker gets the service restarted by systemd instead of silently idling.
"""

from __future__ import annotations

import os
import socket


class Notifier:
    def __init__(self, address: str | None = None) -> None:
        self.address = address if address is not None else os.environ.get("NOTIFY_SOCKET", "")
        self._sock: socket.socket | None = None
        if self.address:
            self._sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)

    @property
    def enabled(self) -> bool:
        return self._sock is not None

    def notify(self, state: str) -> bool:
        if self._sock is None:
            return False
        addr = self.address
        if addr.startswith("@"):
            addr = "\0" + addr[1:]  # abstract namespace socket
        try:
            self._sock.sendto(state.encode(), addr)
            return True
        except OSError:
            return False

    def watchdog_interval(self) -> float | None:
        """Half of `WatchdogSec` (systemd's advice), or None when no watchdog is configured for us."""
        usec = os.environ.get("WATCHDOG_USEC")
        pid = os.environ.get("WATCHDOG_PID")
        if not usec or (pid and pid != str(os.getpid())):
            return None
        try:
            return int(usec) / 2_000_000
        except ValueError:
            return None

    def close(self) -> None:
        if self._sock is not None:
            self._sock.close()
            self._sock = None
