"""Structured logs (docs/OBSERVABILITY.md): a real server logging JSON through a workload
that carries a customer's email, phone, password, session token and a client address in
X-Forwarded-For. Every line is a JSON object, each request has its line with the request
id, operation, actor kind, outcome, status and duration, and none of those values appears
anywhere in the output. Also: the request id a client may send, and the text format."""

from __future__ import annotations

import contextlib
import json
import re
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pytest

from api.observability.logging_setup import uvicorn_log_config
from api.settings import Settings
from tests.cli_helpers import REPO
from tests.real_servers import free_port, server_env, wait_up

EMAIL = "logged.customer@example.com"
PHONE = "+44 20 7946 0555"
PASSWORD = "logged horse battery staple"
FORWARDED_FOR = "198.51.100.23"
CLIENT_ID = "edge-7f3a_42"
SERVER_ID = re.compile(r"[0-9a-f]{32}")

REGISTER = "mutation R($input: RegisterInput!) { register(input: $input) { __typename } }"
LOGIN = """mutation L($e: String!, $p: String!) {
  login(email: $e, password: $p) { __typename ... on LoginSuccess { token } } }"""
REQUEST_FIELDS = ("request_id", "operation", "actor", "outcome", "duration_ms", "status")


@dataclass
class Served:
    url: str
    output: Path

    def lines(self) -> list[str]:
        return [line for line in self.output.read_text().splitlines() if line.strip()]


@contextlib.contextmanager
def uvicorn_server(
    database_url: str, tmp_path: Path, *, log_config: bool = True, **env: str
) -> Iterator[Served]:
    """uvicorn serving the app as `custos serve` does: with the logging configuration
    `uvicorn_log_config` makes (written as the JSON file uvicorn's `--log-config` reads),
    or without one (the app then puts its formatter on uvicorn's handlers). uvicorn's own
    command line trusts X-Forwarded-For from loopback, as behind a local proxy."""
    environment = server_env(database_url, **env)
    port = free_port()
    command = [sys.executable, "-m", "uvicorn", "--factory", "api.app:create_app"]
    command += ["--port", str(port), "--no-server-header"]
    if log_config:
        settings = Settings.model_validate({"log_format": environment.get("CUSTOS_LOG_FORMAT")})
        config = tmp_path / "log-config.json"
        config.write_text(json.dumps(uvicorn_log_config(settings)))
        command += ["--log-config", str(config)]
    output = tmp_path / "server.log"
    with output.open("wb") as sink:
        process = subprocess.Popen(
            command, cwd=REPO, env=environment, stdout=sink, stderr=subprocess.STDOUT
        )
    url = f"http://127.0.0.1:{port}"
    try:
        wait_up(url, process, output)
        yield Served(url, output)
    finally:
        process.terminate()
        process.wait(timeout=20)


def workload(url: str) -> dict[str, httpx.Response]:
    """Register, fail to sign in, sign in, read one's own data with the session token;
    through a proxy that names the client's address; a client id accepted and one not."""
    registration = {
        "email": EMAIL,
        "password": PASSWORD,
        "phone": PHONE,
        "address": {
            "line1": "1 Log Lane",
            "city": "London",
            "postalCode": "NW1 6XE",
            "country": "GB",
        },
    }
    answers: dict[str, httpx.Response] = {}
    proxied = {"X-Forwarded-For": FORWARDED_FOR}
    with httpx.Client(base_url=url, timeout=30, headers=proxied) as client:

        def post(name: str, query: str, variables: dict[str, Any], **headers: str) -> Any:
            answers[name] = client.post(
                "/graphql", json={"query": query, "variables": variables}, headers=headers
            )
            return answers[name].json()

        post("register", REGISTER, {"input": registration}, **{"X-Request-Id": CLIENT_ID})
        post("wrong", LOGIN, {"e": EMAIL, "p": "not the password"}, **{"X-Request-Id": "a b"})
        token = post("login", LOGIN, {"e": EMAIL, "p": PASSWORD})["data"]["login"]["token"]
        me = post("me", "{ me { email phone } }", {}, Authorization=f"Bearer {token}")
        assert me["data"]["me"] == {"email": EMAIL, "phone": PHONE.replace(" ", "")} or me
        post("bad", "{ me { email", {})
        answers["unsubscribe"] = client.get(f"/unsubscribe/{token}")
        answers["collect"] = client.post("/collect", content=EMAIL.encode())
    time.sleep(0.3)  # the access log line is written after the response
    answers["token"] = httpx.Response(200, text=token)
    return answers


def test_json_lines_carry_the_request_and_no_personal_value(
    settings: Settings, tmp_path: Path
) -> None:
    with uvicorn_server(settings.database_url, tmp_path, CUSTOS_LOG_FORMAT="json") as served:
        answers = workload(served.url)
    token = answers["token"].text
    text = served.output.read_text()
    # every line is one JSON object
    records = [json.loads(line) for line in served.lines()]
    assert all(isinstance(r, dict) and r.get("level") and r.get("event") for r in records)
    # no personal value, secret or address anywhere
    for secret in (EMAIL, PHONE, PHONE.replace(" ", ""), PASSWORD, token, FORWARDED_FOR):
        assert secret not in text, secret
    # one line per request, with what an operator needs and nothing else about the person
    requests = [r for r in records if r.get("logger") == "custos.request"]
    assert len(requests) >= 7, requests
    for record in requests:
        for field in REQUEST_FIELDS:
            assert field in record, (field, record)
        assert isinstance(record["duration_ms"], float | int)
    by_id = {r["request_id"]: r for r in requests}
    register = _line(by_id, answers["register"])
    assert register["client_request_id"] == CLIENT_ID
    assert answers["register"].headers["x-request-id"] == CLIENT_ID
    assert register["operation"] == "register"
    assert (register["actor"], register["outcome"], register["status"]) == ("anonymous", "ok", 200)
    wrong = _line(by_id, answers["wrong"])
    assert SERVER_ID.fullmatch(answers["wrong"].headers["x-request-id"])  # "a b" was replaced
    assert "client_request_id" not in wrong
    assert wrong["operation"] == "login"
    me = _line(by_id, answers["me"])
    assert (me["operation"], me["actor"], me["outcome"]) == ("me", "customer", "ok")
    bad = _line(by_id, answers["bad"])
    assert (bad["operation"], bad["outcome"]) == ("anonymous", "refused")
    unsubscribe = _line(by_id, answers["unsubscribe"])
    assert unsubscribe["route"] == "/unsubscribe/{token}"
    # and uvicorn's access log, in the same format, names the client's network only
    access = [r for r in records if r.get("logger") == "uvicorn.access"]
    assert access
    networks = {r["client"] for r in access}
    assert networks == {"198.51.100.0/24", "127.0.0.0/24"}  # the proxied client; wait_up
    assert any(r["path"] == "/unsubscribe/[token]" for r in access)
    # and uvicorn's own lines too
    assert any(r.get("logger") == "uvicorn.error" for r in records)


def _line(by_id: dict[str, dict[str, Any]], answer: httpx.Response) -> dict[str, Any]:
    """The request line of an answer: by the id in its header (the server's, or the
    client's it echoed)."""
    answered = answer.headers["x-request-id"]
    for record in by_id.values():
        if answered in (record["request_id"], record.get("client_request_id")):
            return record
    raise AssertionError(f"no request line for {answered}")


def test_the_app_formats_uvicorns_own_handlers_without_a_log_config(
    settings: Settings, tmp_path: Path
) -> None:
    """`uvicorn api.app:create_app --factory` without `--log-config`: once the app is made,
    uvicorn's handlers write JSON too."""
    with uvicorn_server(
        settings.database_url, tmp_path, log_config=False, CUSTOS_LOG_FORMAT="json"
    ) as served:
        with httpx.Client(base_url=served.url, headers={"X-Forwarded-For": FORWARDED_FOR}) as c:
            c.post("/graphql", json={"query": "{ __typename }"})
        time.sleep(0.3)
    records = [json.loads(line) for line in served.lines()]
    assert any(r.get("logger") == "custos.request" for r in records)
    assert any(r.get("logger") == "uvicorn.access" for r in records)
    assert FORWARDED_FOR not in served.output.read_text()


def test_text_lines_carry_the_same_fields(settings: Settings, tmp_path: Path) -> None:
    with uvicorn_server(settings.database_url, tmp_path, CUSTOS_LOG_FORMAT="text") as served:
        with httpx.Client(base_url=served.url, headers={"X-Forwarded-For": FORWARDED_FOR}) as c:
            c.post("/graphql", json={"query": "{ __typename }"})
        time.sleep(0.3)
    text = served.output.read_text()
    [line] = [line for line in text.splitlines() if "operation=__typename" in line]
    for field in ("[custos.request]", "request_id=", "actor=anonymous", "outcome=ok"):
        assert field in line, line
    assert "198.51.100.0/24" in text
    assert FORWARDED_FOR not in text
    with pytest.raises(json.JSONDecodeError):
        json.loads(line)
