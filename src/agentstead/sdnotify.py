"""systemd notifications (READY=1, STOPPING=1, WATCHDOG=1).

Hand-written: the protocol is one datagram on $NOTIFY_SOCKET, and the
libraries for it either need libsystemd at build time or are unmaintained.
"""

from __future__ import annotations

import os
import socket


def notify(message: str) -> bool:
    """Send one state line to systemd; False when not run under a notify unit."""
    address = os.environ.get("NOTIFY_SOCKET", "")
    if not address:
        return False
    if address.startswith("@"):  # abstract namespace socket
        address = "\0" + address[1:]
    with socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM | socket.SOCK_CLOEXEC) as sock:
        sock.connect(address)
        sock.sendall(message.encode())
    return True


def watchdog_interval() -> float | None:
    """Seconds between pings (half of WatchdogSec) when systemd asked for them."""
    usec = os.environ.get("WATCHDOG_USEC", "")
    pid = os.environ.get("WATCHDOG_PID", "")
    if not usec.isdigit() or (pid and pid != str(os.getpid())):
        return None
    return int(usec) / 2_000_000
