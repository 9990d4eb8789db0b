"""Whether the gateway may listen where it was told: beyond this machine, only with API keys
(or the operator's explicit `allow_open`), since anyone who reaches it may spend the budget."""

from __future__ import annotations

import ipaddress

LOCALHOST = "localhost"


def is_loopback(host: str) -> bool:
    """`localhost` or a loopback address (127.0.0.0/8, ::1); '0.0.0.0', '::' and names are not."""
    if host.strip("[]").lower() == LOCALHOST:
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def open_exposure(host: str, keys_active: bool, allow_open: bool) -> str | None:
    """Why serving on `host` is refused, or None when it may go ahead."""
    if keys_active or allow_open or is_loopback(host):
        return None
    return (f"refusing to serve on {host} with no API keys: anyone who can reach it could use it and spend the "
            "budget. Create a key first (`hybridlm keys create NAME`), or, on a network you trust, set "
            "`server.allow_open: true` or pass --allow-open")
