"""No token reaches the access log: download and unsubscribe paths are shortened."""

from __future__ import annotations

import logging

import pytest

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


@pytest.mark.parametrize(
    ("client", "logged"),
    [
        ("203.0.113.7:4000", "203.0.113.0/24"),
        ("2001:db8:1:2::5:443", "2001:db8:1::/48"),
        ("[2001:db8:1:2::5]:443", "2001:db8:1::/48"),
        ("not-an-address", "-"),
    ],
)
def test_access_log_records_carry_the_network_not_the_address(client: str, logged: str) -> None:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        (client, "POST", "/graphql", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    assert record.getMessage() == f'{logged} - "POST /graphql HTTP/1.1" 200'
