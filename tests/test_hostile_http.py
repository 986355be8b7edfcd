"""Hostile strings at the HTTP edges outside GraphQL: the beacon's fields and the tokens in
`/unsubscribe/` and `/exports/` paths. Each gets a typed answer, never a 500, and nothing is
stored."""

from __future__ import annotations

import json
from urllib.parse import quote

import httpx
import pytest

from models import VisitEvent

SHOP = "https://shop.example.test"
HOSTILE = {
    "nul": "a\x00b",
    "lone-surrogate": "a\ud800b",
    "vertical-tab": "a\x0bb",
    "nel": "a\x85b",
    "line-separator": "a\u2028b",
    "bidi-override": "a\u202eb",
    "huge": "a" * 5000,
}


def _raw_json(payload: dict[str, object]) -> bytes:
    """JSON as any client may send it: lone surrogates escaped (`\\ud800`), not refused."""
    return json.dumps(payload).encode()


@pytest.mark.parametrize("field", ["page", "action", "referrer", "campaign"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
async def test_a_hostile_beacon_field_is_invalid_and_stores_nothing(
    client: httpx.AsyncClient, field: str, kind: str
) -> None:
    beacon: dict[str, object] = {"page": "/products/1", "action": "view", "consent": ["analytics"]}
    beacon[field] = HOSTILE[kind]
    response = await client.post(
        "/collect",
        content=_raw_json(beacon),
        headers={"content-type": "text/plain", "origin": SHOP},
    )
    assert response.status_code == 400, response.text
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_BEACON"
    assert await VisitEvent.all().count() == 0


@pytest.mark.parametrize("prefix", ["/unsubscribe/", "/exports/"])
@pytest.mark.parametrize("kind", sorted(HOSTILE))
async def test_a_hostile_token_in_a_path_is_refused_typed(
    client: httpx.AsyncClient, prefix: str, kind: str
) -> None:
    path = prefix + quote(HOSTILE[kind].encode("utf-8", "surrogatepass"), safe="")
    for method in ("GET", "POST"):
        response = await client.request(method, path, headers={"origin": SHOP})
        assert response.status_code in (400, 403, 404), (method, response.status_code)


async def test_a_beacon_nested_past_the_parser_is_invalid(client: httpx.AsyncClient) -> None:
    # given a beacon of 3,000 nested lists (within the 8 KiB limit)
    nested = b'{"page":' + b"[" * 3000 + b"]" * 3000 + b"}"
    response = await client.post(
        "/collect", content=nested, headers={"content-type": "text/plain", "origin": SHOP}
    )
    # then it is malformed like any other, not an internal error
    assert response.status_code == 400
    assert response.json()["errors"][0]["extensions"]["code"] == "INVALID_BEACON"


@pytest.mark.parametrize(
    "body",
    [
        b'{"query": "{ __typename }", "variables": {"a": ' + b"[" * 20000 + b"]" * 20000 + b"}}",
        b"\xff\xfe not utf-8",
    ],
    ids=["nested-past-the-parser", "not-utf-8"],
)
async def test_a_graphql_body_json_cannot_parse_is_400(
    client: httpx.AsyncClient, body: bytes
) -> None:
    response = await client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.text == "Unable to parse request body as JSON"


@pytest.mark.parametrize("body", [b"null", b"7", b"true", b'"{ __typename }"'])
async def test_a_body_that_is_not_an_object_is_a_bad_request(
    client: httpx.AsyncClient, body: bytes
) -> None:
    # strawberry's view raised AttributeError on these: an internal error (HTTP 500)
    response = await client.post(
        "/graphql", content=body, headers={"content-type": "application/json"}
    )
    assert response.status_code == 400
    assert response.text == "The request body must be a JSON object."
