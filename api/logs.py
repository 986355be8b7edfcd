"""Logging hygiene: URLs that carry a secret (download and unsubscribe tokens) are
shortened before uvicorn's access log writes them."""

from __future__ import annotations

import logging

SECRET_PATHS = ("/exports/", "/unsubscribe/")


def redact_path(path: str) -> str:
    for prefix in SECRET_PATHS:
        if path.startswith(prefix):
            return prefix + "[token]"
    return path


class RedactTokens(logging.Filter):
    """uvicorn.access records carry (client, method, path, http version, status)."""

    def filter(self, record: logging.LogRecord) -> bool:
        args = record.args
        if isinstance(args, tuple) and len(args) >= 3 and isinstance(args[2], str):
            record.args = (*args[:2], redact_path(args[2]), *args[3:])
        return True


def install() -> None:
    logger = logging.getLogger("uvicorn.access")
    if not any(isinstance(f, RedactTokens) for f in logger.filters):
        logger.addFilter(RedactTokens())
