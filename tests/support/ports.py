"""A free loopback port for a child that must be told its port (HAProxy, an agent's HTTP_PORT ≥ 1)."""

from __future__ import annotations

import random
import socket

__all__ = ["PORT_RANGE", "free_port"]

#: Below Linux's ephemeral range (32768–60999): a port handed out by bind(0) comes from that range, so any
#: outgoing connection on the box could take it before HAProxy or an agent binds it (CI saw HAProxy fail to
#: start its listeners). A port picked here can only clash with another picker, and is checked free.
PORT_RANGE = (20000, 32767)


def free_port() -> int:
    for _ in range(200):
        port = random.randint(*PORT_RANGE)
        with socket.socket() as sock:
            try:
                sock.bind(("127.0.0.1", port))
            except OSError:
                continue
        return port
    raise RuntimeError(f"no free port in {PORT_RANGE}")
