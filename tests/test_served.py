"""`custos serve` as an operator runs it: a real uvicorn process in production settings, on
a SQLite file of the test's own. What only a real server shows: its headers, a client that
stalls mid-body, and what ends up in its log."""

from __future__ import annotations

import os
import re
import secrets
import signal
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

from bench.hostile import fan_out
from tests.cli_helpers import REPO
from tests.ports import free_port as _free_port

CLIENT_ADDRESS = "127.0.0.9"  # the test client's source address: it must never be logged
EMAIL = "served.customer@example.com"
PHONE = "+44 20 7946 0321"
PASSWORD = "served horse battery staple"


@dataclass
class Served:
    url: str
    port: int
    log: Path

    def client(self) -> httpx.Client:
        transport = httpx.HTTPTransport(local_address=CLIENT_ADDRESS)
        return httpx.Client(base_url=self.url, transport=transport, timeout=10)


@pytest.fixture(scope="module")
def served(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Served]:
    directory = tmp_path_factory.mktemp("served")
    policy = directory / "privacy-policy.txt"
    policy.write_text("The shop's own privacy policy.", "utf-8")
    env = {
        **os.environ,
        "DATABASE_URL": f"sqlite://{directory / 'custos.sqlite3'}",
        "CUSTOS_ENV": "production",
        "CUSTOS_SECRET_KEY": secrets.token_urlsafe(48),
        "CUSTOS_PUBLIC_URL": "https://shop.example",
        "CUSTOS_POLICY_FILE": str(policy),
        "CUSTOS_CONTROLLER_NAME": "Shop Ltd",
        "CUSTOS_CONTROLLER_CONTACT": "privacy@shop.example",
        "CUSTOS_DPO_CONTACT": "dpo@shop.example",
        "CUSTOS_MAIL_POLL_SECONDS": "0",
        "CUSTOS_RETENTION_INTERVAL_SECONDS": "0",
        "CUSTOS_BODY_TIMEOUT_SECONDS": "1",
        "CUSTOS_ARGON2_TIME_COST": "2",
        "CUSTOS_ARGON2_MEMORY_KIB": str(19 * 1024),
        "CUSTOS_ARGON2_PARALLELISM": "1",
    }
    env.pop("TEST_DATABASE_URL", None)
    subprocess.run(
        [sys.executable, "-m", "api", "migrate"], cwd=REPO, env=env, check=True, timeout=60
    )
    port = _free_port()
    log = directory / "server.log"
    with log.open("wb") as sink:
        process = subprocess.Popen(
            [sys.executable, "-m", "api", "serve", "--port", str(port)],
            cwd=REPO,
            env=env,
            stdout=sink,
            stderr=subprocess.STDOUT,
        )
    url = f"http://127.0.0.1:{port}"
    try:
        for _ in range(200):
            try:
                if httpx.get(f"{url}/healthz", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        else:
            pytest.fail(f"custos serve did not start: {log.read_text()}")
        yield Served(url=url, port=port, log=log)
    finally:
        process.send_signal(signal.SIGTERM)
        process.wait(timeout=20)


SECURITY_HEADERS = {
    "x-content-type-options": "nosniff",
    "x-frame-options": "DENY",
    "referrer-policy": "no-referrer",
    "strict-transport-security": "max-age=63072000; includeSubDomains",
}


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("GET", "/healthz"),
        ("GET", "/readyz"),
        ("POST", "/graphql"),
        ("GET", "/graphql"),
        ("POST", "/collect"),
        ("GET", "/unsubscribe/not-a-token"),
        ("GET", "/exports/not-a-token"),
        ("GET", "/no-such-page"),
    ],
)
def test_every_route_has_the_security_headers_and_no_banner(
    served: Served, method: str, path: str
) -> None:
    with served.client() as client:
        response = client.request(method, path, json={"query": "{ __typename }"})
    assert "server" not in response.headers
    for name, value in SECURITY_HEADERS.items():
        assert response.headers[name] == value, (path, response.headers)
    assert "frame-ancestors 'none'" in response.headers["content-security-policy"]


def test_no_field_suggestions_in_production(served: Served) -> None:
    with served.client() as client:
        body = client.post("/graphql", json={"query": "{ currentPolicie { version } }"}).json()
    [error] = body["errors"]
    assert error["message"] == "Cannot query field 'currentPolicie' on type 'Query'."
    assert "Did you mean" not in str(body)


def test_a_stalled_body_is_cut_off_and_the_server_keeps_answering(served: Served) -> None:
    # given a client that announces 100 bytes, sends 10 and stalls
    with socket.create_connection(("127.0.0.1", served.port), timeout=10) as stalled:
        stalled.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            b"Content-Length: 100\r\n\r\n" + b'{"query":'
        )
        # then other clients are answered meanwhile
        with served.client() as client:
            assert client.get("/healthz").status_code == 200
        # and the stalled one gets 408 once the body timeout (1 s here) has passed
        answer = b""
        while b"REQUEST_TIMEOUT" not in answer and (chunk := stalled.recv(4096)):
            answer += chunk
    assert answer.startswith(b"HTTP/1.1 408"), answer
    assert b"REQUEST_TIMEOUT" in answer


def test_a_fragment_bomb_leaves_the_server_answering(served: Served) -> None:
    with served.client() as client:
        body = client.post("/graphql", json={"query": fan_out(22)}).json()
        assert body["errors"][0]["extensions"]["code"] == "QUERY_TOO_COMPLEX"
        assert client.get("/healthz", timeout=2).status_code == 200


def test_the_log_holds_no_address_email_phone_password_or_token(served: Served) -> None:
    # given a customer who registers, fails to sign in, signs in, and reads their data
    register = """mutation R($input: RegisterInput!) { register(input: $input) { __typename } }"""
    login = """mutation L($e: String!, $p: String!) {
      login(email: $e, password: $p) { __typename ... on LoginSuccess { token } } }"""
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
    with served.client() as client:
        client.post("/graphql", json={"query": register, "variables": {"input": registration}})
        client.post("/graphql", json={"query": login, "variables": {"e": EMAIL, "p": "wrong"}})
        client.post("/graphql", json={"query": "{ me { email phone } }"})
        client.post("/collect", content=b"\x00not json", headers={"content-type": "text/plain"})
        client.get("/unsubscribe/" + "A" * 40)
        client.get("/exports/" + "B" * 43)
    time.sleep(0.3)  # the access log line is written after the response
    # then the log names the client's network only, and none of the personal values
    text = served.log.read_text(errors="replace")
    assert "127.0.0.0/24" in text  # the access log is on, with the network
    for secret in (CLIENT_ADDRESS, EMAIL, PHONE, PASSWORD, "A" * 40, "B" * 43):
        assert secret not in text, secret
    assert not re.search(r"Traceback \(most recent call last\)", text)
