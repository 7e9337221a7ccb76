"""Where ``govern serve --dev`` may listen: this machine only.

Development mode signs anyone in as any directory user without a password, so it must never
be reachable from the network. :func:`loopback_only` accepts a loopback address
(127.0.0.0/8, ::1) or a name whose every address is one (``localhost``), and returns the
address to listen on: a name is resolved once, here, and the server binds exactly the
address that was checked (nothing is resolved again later). Everything else is refused,
failing closed: the wildcard addresses (0.0.0.0, ::), any other address, an IPv4-mapped
IPv6 address, a name with any address elsewhere, and a name that does not resolve.
"""

from __future__ import annotations

import ipaddress
import socket

from govern.engine.errors import GovernError


class NotLoopback(GovernError):
    """``--dev`` with an address other machines could reach."""


def _refuse(host: str, why: str) -> NotLoopback:
    return NotLoopback(f"govern serve --dev listens only on this machine (127.0.0.1, ::1 or "
                       f"localhost): --host {host[:100]!r} {why}")


def loopback_only(host: str) -> str:
    """The loopback address to listen on for ``host``, or :class:`NotLoopback`."""
    name = (host or "").strip()
    try:
        address = ipaddress.ip_address(name)
    except ValueError:
        address = None
    if address is not None:
        if not address.is_loopback:
            raise _refuse(host, "is not a loopback address")
        return str(address)
    if not name:
        raise _refuse(host, "is empty (every interface)")
    try:
        infos = socket.getaddrinfo(name, None, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError):
        raise _refuse(host, "does not resolve") from None
    found = [ipaddress.ip_address(str(info[4][0])) for info in infos]
    if not found:
        raise _refuse(host, "does not resolve")
    elsewhere = sorted({str(a) for a in found if not a.is_loopback})
    if elsewhere:
        raise _refuse(host, f"resolves to {', '.join(elsewhere)[:100]}, not only to loopback")
    return str(found[0])
