"""IP handling: the raw address is never stored; analytics keeps a truncated network."""

from __future__ import annotations

import ipaddress
from functools import lru_cache


@lru_cache(maxsize=65536)  # the ipaddress module is slow, and visitors send many beacons
def truncate_ip(ip: str | None) -> str | None:
    """/24 for IPv4, /48 for IPv6; None for anything that is not an address."""
    if not ip:
        return None
    try:
        address = ipaddress.ip_address(ip)
    except ValueError:
        return None
    prefix = 24 if address.version == 4 else 48
    return str(ipaddress.ip_network(f"{address}/{prefix}", strict=False))
