"""Logging hygiene: uvicorn's access log gets the client's network, never its address
(/24 for IPv4, /48 for IPv6, as the audit log keeps it), and URLs that carry a secret
(download and unsubscribe tokens) are shortened before it writes them."""

from __future__ import annotations

import logging

from api.security.network import truncate_ip

SECRET_PATHS = ("/exports/", "/unsubscribe/")


def redact_path(path: str) -> str:
    for prefix in SECRET_PATHS:
        if path.startswith(prefix):
            return prefix + "[token]"
    return path


def redact_client(client: str) -> str:
    """uvicorn writes the client as `address:port`; keep only the address's network."""
    address = client.rsplit(":", 1)[0] if ":" in client else client
    return truncate_ip(address.strip("[]")) or "-"


class RedactTokens(logging.Filter):
    """uvicorn.access records carry (client, method, path, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            client = redact_client(args[0]) if isinstance(args[0], str) else "-"
            record.args = (client, args[1], redact_path(args[2]), *args[3:])
        return True


def install() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
