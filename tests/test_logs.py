"""No token reaches the access log: download and unsubscribe paths are shortened."""

from __future__ import annotations

import logging

import pytest

from api.logs import RedactTokens, redact_path
from tests.log_scan import LogScan


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


@pytest.mark.parametrize(
    ("message", "kind"),
    [
        ("sent to jane.doe@example.com", "email address"),
        ("client 203.0.113.7 refused", "IP address"),
        ("call +44 20 7946 0958", "phone number"),
        ("token Zm9vYmFyYmF6cXV4cXV1eHh4eHh4eHh4eHh4eHh4eHh4eA", "token"),
        ("password correct horse battery staple", "password"),
    ],
)
def test_the_run_wide_log_scan_finds_each_kind(message: str, kind: str) -> None:
    scan = LogScan()
    scan.emit(logging.LogRecord("custos", logging.INFO, __file__, 1, message, None, None))
    assert scan.findings == [f"custos (INFO): a {kind}"]


def test_the_run_wide_log_scan_passes_what_may_be_logged() -> None:
    scan = LogScan()
    for message in (
        "203.0.113.0/24 - POST /graphql 200",
        "request 9f86d081884c7d659a2feaa0c55ad015: unexpected RuntimeError",
        "digest 9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08",
        "GET /exports/[token] 410",
    ):
        scan.emit(logging.LogRecord("custos", logging.INFO, __file__, 1, message, None, None))
    assert scan.findings == []
