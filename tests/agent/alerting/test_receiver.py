"""The test receiver itself: what it records is what the delivery tests assert on, so it must not record a
request it never fully received."""

from __future__ import annotations

import socket
from collections.abc import Callable

from agent.alerting.testing import Receiver


def test_a_request_cut_off_by_down_is_neither_recorded_nor_answered(waiter: Callable[..., None]) -> None:
    rx = Receiver()
    try:
        with socket.create_connection(("127.0.0.1", rx.port), timeout=5) as sock:
            # Headers first, the body later, as urllib3 sends them: the handler is now blocked reading the body.
            sock.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 20\r\n\r\n0123456789")
            waiter(lambda: len(rx._conns) == 1, what="the handler to hold the connection")
            rx.down()
            sock.settimeout(5)
            assert sock.recv(4096) == b""
        assert rx.requests == [] and rx.accepted == []
        rx.up()
        with socket.create_connection(("127.0.0.1", rx.port), timeout=5) as sock:
            sock.sendall(b"POST /hook HTTP/1.1\r\nHost: x\r\nContent-Length: 2\r\n\r\n{}")
            sock.settimeout(5)
            assert sock.recv(4096).startswith(b"HTTP/1.1 200")
        assert [r.body for r in rx.accepted] == [b"{}"]
    finally:
        rx.close()
