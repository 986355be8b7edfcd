"""No token reaches the access log: download and unsubscribe paths are shortened."""

from __future__ import annotations

import logging

from api.logs import RedactTokens, redact_path


def test_secret_paths_are_shortened_in_access_log_records() -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.7:4000", "POST", "/unsubscribe/AbCdEf123", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert "AbCdEf123" not in record.getMessage()
    assert "/unsubscribe/[token]" in record.getMessage()
    assert redact_path("/exports/secret-token") == "/exports/[token]"
    assert redact_path("/graphql") == "/graphql"
