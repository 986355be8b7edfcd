"""Hostile strings in every String and ID argument of the schema, as every role.

The schema is walked (tests/schema_calls.py): each argument of the Query and Mutation root
fields and of the fields nested under Query, into input objects and lists, gets a valid-enough
call with a hostile string in its place, sent as a variable or written inline. Whatever the
string, the server must answer without an internal error, and an answer that is an error must
have written nothing. The decision log (audit_event, audit_posting) and the attempt counters
(login_failure, rate_count) are left out of that comparison: recording a refused attempt is
their job. A string that breaks its rule must be refused at the edge, naming the argument."""

from __future__ import annotations

import json
import os
from collections import defaultdict
from dataclasses import dataclass
from typing import Any

import pytest
from hypothesis import HealthCheck, Phase, given, settings
from hypothesis import strategies as st
from tortoise import Tortoise, connections

from api.hygiene.registry import rule_for
from api.hygiene.rules import problem
from api.schema import build_schema
from api.services import Services
from api.settings import Settings
from authz.registry import Role
from models import Employee
from tests.conftest import GQL, login, register, signed_in_employee, stored_customer
from tests.schema_calls import Target, Values, call, targets

TARGETS = targets(build_schema(Settings())._schema)
OPERATIONS: dict[str, list[Target]] = defaultdict(list)
for _target in TARGETS:
    OPERATIONS[".".join(name for name, _ in _target.chain)].append(_target)

ROLES = ["anonymous", "customer", *(role.value for role in Role)]
EXAMPLES = int(os.environ.get("HOSTILE_EXAMPLES", "5"))
"""Hypothesis examples per role; each example sends one call to every operation."""

RECORDS_REFUSALS = frozenset(
    {"audit_event", "audit_posting", "audit_subject", "login_failure", "rate_count"}
)
ERROR_MEMBERS = frozenset({"InputError", "RightsError", "TokenError", "InvalidCredentials"})

# Refused by every rule, and what fuzzing found.
REFUSED = ["\x00", "a\x00b", "\ud800", "x\udfff", "\udc00\ud800"]
# Refused in one-line arguments.
CONTROLS = ["\x0b", "\x85", "\u2028", "\u2029", "\x7f", "\x1b[31m", "\u202e", "\u2066", "\n"]
# Allowed everywhere: they must travel to the database and back without harm.
ODD = ["", " ", "\u200f\u05d0", "\u200d", "\ufeff", "\U0001f600", "%00", "' OR 1=1 --", "\\"]
ODD += ['"', "<script>", "é" * 20, "\t", "\r\n", "${jndi:x}", "0", "-1", "null"]
CHARACTERS = st.characters(categories=["Cc", "Cs", "Cf", "Zl", "Zp", "Zs", "Lo", "Mn", "So", "Ll"])


def hostile(target: Target) -> st.SearchStrategy[str | tuple[str, int]]:
    """Fixed cases, lengths around the argument's limit (drawn as (character, count) so a
    report stays short), and random text of odd characters."""
    limit = rule_for(target.key, target.scalar).max_length
    return st.one_of(
        st.sampled_from(REFUSED + CONTROLS + ODD),
        st.tuples(st.sampled_from(["x", "\u00e9"]), st.sampled_from([limit, limit + 1, 5_000])),
        st.just(("x", 100_000)),
        st.text(CHARACTERS, max_size=30),
    )


def spelled(drawn: str | tuple[str, int]) -> str:
    return drawn if isinstance(drawn, str) else drawn[0] * drawn[1]


@dataclass
class Actor:
    role: str
    token: str | None
    values: Values


@pytest.fixture(params=ROLES)
async def actor(request: pytest.FixtureRequest, gql: GQL, services: Services, clock: Any) -> Actor:
    """The role signed in, a customer and another employee for the ids calls name."""
    role: str = request.param
    token = None
    if role == "customer":
        await register(gql)
        token = await login(gql)
        customer_id = (await gql("{ me { id } }", token=token))["data"]["me"]["id"]
    else:
        customer_id = str((await stored_customer(0, at=clock.now())).id)
    if role in {r.value for r in Role}:
        token, _ = await signed_in_employee(gql, services, role)
    other = await Employee.create(
        email="other@staff.example.com", name="Other", password_hash="x", created_at=clock.now()
    )
    gql.client.cookies.clear()
    ids = {"customerId": customer_id, "employeeId": str(other.id)}
    return Actor(role, token, Values(now=clock.now(), ids=ids))


async def row_counts(leaving_out: frozenset[str] = RECORDS_REFUSALS) -> dict[str, int]:
    """Rows of every table but those left out, in one round trip."""
    tables = sorted(
        model._meta.db_table
        for model in Tortoise.apps["models"].values()
        if model._meta.db_table not in leaving_out
    )
    counts = ", ".join(f"(SELECT COUNT(*) FROM {t}) AS {t}" for t in tables)
    _, rows = await connections.get("default").execute_query(f"SELECT {counts}")
    return {t: int(rows[0][t]) for t in tables}


async def send(gql: GQL, query: str, variables: dict[str, Any], token: str | None) -> Any:
    """Escaped JSON bytes (httpx's encoder refuses lone surrogates); cookies never kept."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    payload = json.dumps({"query": query, "variables": variables}).encode()
    response = await gql.client.post("/graphql", content=payload, headers=headers)
    gql.client.cookies.clear()
    return response


def _is_error(body: dict[str, Any]) -> bool:
    if body.get("errors"):
        return True
    payload = next(iter((body.get("data") or {}).values()), None)
    return isinstance(payload, dict) and payload.get("__typename") in ERROR_MEMBERS


async def check(gql: GQL, actor: Actor, target: Target, text: str, literal: bool) -> str | None:
    """What is wrong with the answer to `text` at `target`; None when all is well."""
    sent = call(target, text, actor.values, literal=literal)
    before = await row_counts()
    response = await send(gql, sent.query, sent.variables, actor.token)
    if response.status_code == 413:  # over the body limit: refused before GraphQL
        return None
    if response.status_code >= 500:
        return f"HTTP {response.status_code}"
    body = response.json()
    codes = [(e.get("extensions") or {}).get("code") for e in body.get("errors") or []]
    if "INTERNAL_SERVER_ERROR" in codes:
        return f"internal error: {body}"
    if _is_error(body) and await row_counts() != before:
        return f"an error answer wrote rows: {body}"
    if problem(text, rule_for(target.key, target.scalar)) is None:
        return None
    fields = [(e.get("extensions") or {}).get("field") for e in body.get("errors") or []]
    if codes == ["GRAPHQL_PARSE_FAILED"] and literal:  # a raw surrogate in the document
        return None
    if body.get("data") is not None or target.path not in fields:
        return f"not refused at the edge: {body}"
    if len(text) >= 8 and text in json.dumps(body, ensure_ascii=False):
        return "the error quotes the input"
    return None


@settings(
    max_examples=EXAMPLES,
    deadline=None,
    phases=[Phase.explicit, Phase.reuse, Phase.generate],  # one example is a whole sweep
    suppress_health_check=[
        HealthCheck.function_scoped_fixture,
        HealthCheck.too_slow,
        HealthCheck.data_too_large,
    ],
)
@given(data=st.data())
async def test_no_string_in_any_argument_breaks_the_server_for_any_role(
    gql: GQL, actor: Actor, data: st.DataObject
) -> None:
    failures = []
    for operation, choices in OPERATIONS.items():
        target = data.draw(st.sampled_from(choices), label=operation)
        drawn = data.draw(hostile(target), label=str(target))
        literal = data.draw(st.booleans(), label="literal")
        if (failure := await check(gql, actor, target, spelled(drawn), literal)) is not None:
            failures.append(f"{actor.role} {target} {drawn!r} literal={literal}: {failure[:600]}")
    assert not failures, "\n".join(failures)


OVER_LONG = "over-long"


@pytest.mark.parametrize("kind", [*REFUSED, *CONTROLS, OVER_LONG])
async def test_every_argument_refuses_each_hostile_kind_before_anything_runs(
    gql: GQL, clock: Any, kind: str
) -> None:
    """Deterministic: every target, each kind, as anonymous (the edge answers before
    authorization); not one row of any table is written, the decision log included."""
    values = Values(now=clock.now())
    before = await row_counts(leaving_out=frozenset())
    wrong = []
    for target in TARGETS:
        rule = rule_for(target.key, target.scalar)
        text = "x" * (rule.max_length + 1) if kind == OVER_LONG else kind
        if problem(text, rule) is None:
            continue  # e.g. a line break in free text, a bidi control in a password
        sent = call(target, text, values)
        response = await send(gql, sent.query, sent.variables, None)
        if response.status_code == 413:  # a document longer than the body limit
            continue
        body = response.json()
        errors = [
            (e["extensions"].get("code"), e["extensions"].get("field"), text in e["message"])
            for e in body["errors"]
        ]
        if body["data"] is not None or errors != [("VALIDATION", target.path, False)]:
            wrong.append(f"{target}: {body}"[:600])
    assert not wrong, "\n".join(wrong)
    assert await row_counts(leaving_out=frozenset()) == before
