"""No token reaches the access log: download and unsubscribe paths are shortened, the
client's address becomes its network, in the JSON and the text format alike; the request
id a client may send."""

from __future__ import annotations

import json
import logging
import re

import httpx
import pytest

from api.logs import RedactTokens, redact_path
from api.observability.logging_setup import formatter, uvicorn_log_config
from api.settings import Settings
from models import AuditEvent
from tests.conftest import GQL, ME, login, register
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


# --- the access log in both formats (api/observability/logging_setup.py) -------------------


def _access_record() -> logging.LogRecord:
    record = logging.LogRecord(
        "uvicorn.access",
        logging.INFO,
        __file__,
        1,
        '%s - "%s %s HTTP/%s" %d',
        ("203.0.113.7:4000", "GET", "/exports/SeCrEtToKeN123", "1.1", 200),
        None,
    )
    assert RedactTokens().filter(record)
    return record


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_both_formats_keep_the_access_log_redacted(fmt: str) -> None:
    line = formatter(fmt).format(_access_record())
    assert "203.0.113.7" not in line
    assert "SeCrEtToKeN123" not in line
    assert "203.0.113.0/24" in line
    assert "/exports/[token]" in line
    if fmt == "json":
        fields = json.loads(line)
        assert fields["logger"] == "uvicorn.access"
        assert (fields["client"], fields["path"], fields["status"]) == (
            "203.0.113.0/24",
            "/exports/[token]",
            200,
        )


def test_other_records_arguments_stay_in_their_message_only() -> None:
    record = logging.LogRecord(
        "custos.rights", logging.WARNING, __file__, 1, "intake: %s", ("OperationalError",), None
    )
    fields = json.loads(formatter("json").format(record))
    assert fields["event"] == "intake: OperationalError"
    assert "positional_args" not in fields


def test_the_uvicorn_configuration_redacts_the_access_log_and_formats_every_logger(
    settings: Settings,
) -> None:
    config = uvicorn_log_config(settings.model_copy(update={"log_format": "json"}), "warning")
    assert config["loggers"]["uvicorn.access"]["filters"] == ["redact"]
    assert config["filters"]["redact"]["()"] == "api.logs.RedactTokens"
    assert {f["fmt"] for f in config["formatters"].values()} == {"json"}
    assert config["loggers"]["custos"]["level"] == logging.WARNING  # as uvicorn's
    assert config["root"]["handlers"] == ["default"]
    assert config["disable_existing_loggers"] is False
    json.dumps(config)  # uvicorn's --log-config reads it from a JSON file too


def test_the_log_format_defaults_to_json_in_production_only() -> None:
    assert Settings(env="development").effective_log_format == "text"
    assert Settings(env="development", log_format="json").effective_log_format == "json"


# --- the request id (api/http_guard.py, api/observability/request_log.py) ------------------


async def test_an_incoming_request_id_is_answered_back_only_when_it_is_a_short_token(
    client: httpx.AsyncClient,
) -> None:
    kept = await client.get("/healthz", headers={"X-Request-Id": "edge-7f3a_42"})
    assert kept.headers["x-request-id"] == "edge-7f3a_42"
    for refused in (b"a b", b"x" * 65, b"jane@example.com", b"", "ü".encode("latin-1")):
        answer = await client.get("/healthz", headers={b"X-Request-Id": refused})
        assert re.fullmatch(r"[0-9a-f]{32}", answer.headers["x-request-id"]), refused
    drawn = await client.get("/healthz")
    assert re.fullmatch(r"[0-9a-f]{32}", drawn.headers["x-request-id"])


async def test_the_decision_log_keeps_the_id_the_server_drew(gql: GQL) -> None:
    """A customer's access log groups a request's rows by its id: a client choosing it could
    merge requests, so the decision log never takes the client's."""
    await register(gql)
    token = await login(gql)
    answer = await gql.client.post(
        "/graphql",
        json={"query": ME},
        headers={"Authorization": f"Bearer {token}", "X-Request-Id": "same-for-every-call"},
    )
    assert answer.headers["x-request-id"] == "same-for-every-call"
    ids = {str(i) for i in await AuditEvent.all().values_list("request_id", flat=True)}
    assert "same-for-every-call" not in ids
    assert ids
