"""Input hygiene at the edge (api/hygiene): the character rules, the registry against the
schema and the columns, and the cases fuzzing found, each refused with a typed VALIDATION
error before anything runs (on SQLite and on PostgreSQL, where NUL cannot be stored)."""

from __future__ import annotations

import json
import unicodedata
from typing import Any

import pytest
from graphql import GraphQLInputObjectType, GraphQLObjectType, get_named_type
from tortoise import Tortoise, connections
from tortoise.fields import CharField

from api.hygiene.check import MAX_ERRORS
from api.hygiene.registry import ID, LINE, RULES, SECRET, TEXT, rule_for
from api.hygiene.rules import Rule, problem
from api.schema import build_schema
from api.services import Services
from api.settings import Settings
from models import AuditEvent, Campaign, Customer, PrivacyPolicy, SupportCase
from tests.conftest import GQL, PASSWORD, login, register, registration, signed_in_employee

BIDI_CONTROLS = set("\u202a\u202b\u202c\u202d\u202e\u2066\u2067\u2068\u2069")
SEPARATORS = set("\u2028\u2029")
CODE_POINTS = [*range(0x10000), 0x1F600, 0xE0001, 0x10FFFF]


# --- the rules, character by character ------------------------------------------------


def _refused(rule: Rule) -> set[str]:
    return {chr(c) for c in CODE_POINTS if problem(chr(c), rule) is not None}


def _category(*categories: str) -> set[str]:
    return {chr(c) for c in CODE_POINTS if unicodedata.category(chr(c)) in categories}


def test_one_line_refuses_controls_surrogates_separators_and_bidi_overrides() -> None:
    assert _refused(LINE) == _category("Cc", "Cs") | SEPARATORS | BIDI_CONTROLS
    # the marks right-to-left text may need stay allowed, as do joiners for emoji and scripts
    assert problem("\u200f\u200e\u061c\u200d\ufeff", LINE) is None


def test_free_text_also_takes_tabs_line_breaks_and_bidi_controls() -> None:
    assert _refused(TEXT) == (_category("Cc", "Cs") - set("\t\n\r")) | SEPARATORS


def test_a_secret_refuses_only_nul_and_unpaired_surrogates() -> None:
    assert _refused(SECRET) == {"\x00"} | _category("Cs")


def test_length_is_counted_in_code_points_as_the_database_counts_characters() -> None:
    assert problem("é" * 1000, LINE) is None
    assert problem("\U0001f600" * 1000, LINE) is None
    assert problem("x" * 1001, LINE) is not None
    assert problem("x" * 65, ID) is not None


def test_a_problem_never_quotes_the_value() -> None:
    for value in ("marker\x00", "marker\ud800", "marker\x0b", "marker" * 200, "marker\u202e"):
        message = problem(value, LINE)
        assert message is not None
        assert "marker" not in message


# --- the registry against the schema and the columns ----------------------------------


def _declared_texts() -> dict[str, str]:
    """Every `Type.field.argument` and `InputType.field` of the schema, with its scalar."""
    schema = build_schema(Settings())._schema
    found: dict[str, str] = {}
    for type_ in schema.type_map.values():
        if isinstance(type_, GraphQLObjectType):
            for name, field in type_.fields.items():
                for arg_name, arg in field.args.items():
                    found[f"{type_.name}.{name}.{arg_name}"] = get_named_type(arg.type).name
        elif isinstance(type_, GraphQLInputObjectType):
            for name, input_field in type_.fields.items():
                found[f"{type_.name}.{name}"] = get_named_type(input_field.type).name
    return found


def test_every_registry_key_names_a_string_or_id_of_the_schema() -> None:
    declared = _declared_texts()
    for key in RULES:
        assert declared.get(key) in ("String", "ID"), key


# Arguments compared or stored as sent: the limit must fit the column.
COLUMNS = {
    "Query.supportQueue.status": ("SupportCase", "status"),
    "Mutation.publishPolicy.version": ("PrivacyPolicy", "version"),
    "Mutation.acceptPolicy.version": ("PolicyAcceptance", "version"),
    "AccessDecisionFilter.event": ("AuditEvent", "event"),
    "AccessDecisionFilter.actorId": ("AuditEvent", "actor_id"),
    "DisclosureFilter.recipient": ("Disclosure", "recipient"),
    "Query.customers.search": ("Customer", "email"),
}


def test_limits_fit_the_columns_the_values_are_compared_with() -> None:
    declared = _declared_texts()
    for key, (model, column) in COLUMNS.items():
        field = Tortoise.apps["models"][model]._meta.fields_map[column]
        assert isinstance(field, CharField)
        assert rule_for(key, declared[key]).max_length <= field.max_length, key


# --- over HTTP ----------------------------------------------------------------------------


async def post(
    gql: GQL, query: str, variables: dict[str, Any] | None = None, token: str | None = None
) -> dict[str, Any]:
    """Sent as escaped JSON bytes: httpx's own encoder refuses lone surrogates."""
    headers = {"content-type": "application/json"}
    if token:
        headers["authorization"] = f"Bearer {token}"
    payload = json.dumps({"query": query, "variables": variables or {}}).encode()
    response = await gql.client.post("/graphql", content=payload, headers=headers)
    assert response.status_code == 200, response.text
    body: dict[str, Any] = response.json()
    return body


def refused(body: dict[str, Any], *fields: str) -> None:
    """The operation did not run: no data, one VALIDATION error per named argument."""
    assert body["data"] is None, body
    got = [(e["extensions"]["code"], e["extensions"]["field"]) for e in body["errors"]]
    assert got == [("VALIDATION", field) for field in fields], body


async def row_counts() -> dict[str, int]:
    conn = connections.get("default")
    counts = {}
    for model in Tortoise.apps["models"].values():
        table = model._meta.db_table
        _, rows = await conn.execute_query(f"SELECT COUNT(*) AS n FROM {table}")
        counts[table] = int(rows[0]["n"])
    return counts


async def customer_token(gql: GQL) -> str:
    await register(gql)
    token = await login(gql)
    gql.client.cookies.clear()
    return token


async def employee_token(gql: GQL, services: Services, role: str) -> str:
    token, _ = await signed_in_employee(gql, services, role)
    gql.client.cookies.clear()
    return token


SUPPORT_QUEUE = "query($status: String!) { supportQueue(status: $status) { id } }"
PUBLISH = """
mutation($version: String!, $at: DateTime!) {
  publishPolicy(version: $version, effectiveAt: $at, material: false, summary: "s", text: "t") {
    __typename } }
"""
LOGIN = "mutation($e: String!, $p: String!) { login(email: $e, password: $p) { __typename } }"
STAFF_LOGIN = """
mutation($e: String!, $p: String!) { staffLogin(email: $e, password: $p) { __typename } }
"""
VERIFY = "mutation($t: String!) { verifyEmail(token: $t) { __typename } }"
BY_EMAIL = """
mutation($e: String!) { submitRightsRequestByEmail(email: $e, kind: ACCESS) { __typename } }
"""
OPEN_CASE = """
mutation($s: String!, $m: String!) { openSupportCase(subject: $s, message: $m) {
  __typename ... on SupportCase { id } } }
"""
SEARCH = "query($q: String) { customers(purpose: SUPPORT, search: $q) { edges { cursor } } }"
CAMPAIGN = """
mutation($s: String!, $t: String!) { createCampaign(subject: $s, bodyText: $t) {
  __typename ... on Campaign { id } } }
"""
REGISTER = "mutation($i: RegisterInput!) { register(input: $i) { __typename } }"


async def test_an_over_long_support_queue_status_is_refused(gql: GQL, services: Services) -> None:
    token = await employee_token(gql, services, "customer_care")
    refused(await post(gql, SUPPORT_QUEUE, {"status": "open" * 5}, token), "status")
    body = await post(gql, SUPPORT_QUEUE, {"status": "x" * 16}, token)
    assert body == {"data": {"supportQueue": []}}


async def test_an_over_long_policy_version_is_refused_and_nothing_is_published(
    gql: GQL, services: Services, clock: Any
) -> None:
    token = await employee_token(gql, services, "legal")
    before = await PrivacyPolicy.all().count()
    at = clock.now().isoformat()
    refused(await post(gql, PUBLISH, {"version": "9" * 33, "at": at}, token), "version")
    assert await PrivacyPolicy.all().count() == before


SURROGATE = "a\ud800b"


async def test_a_lone_surrogate_in_a_sign_in_is_refused(gql: GQL, services: Services) -> None:
    await employee_token(gql, services, "admin")
    for document in (LOGIN, STAFF_LOGIN):
        refused(await post(gql, document, {"e": SURROGATE, "p": PASSWORD}), "email")
        refused(await post(gql, document, {"e": "a@example.com", "p": SURROGATE}), "password")


@pytest.mark.parametrize(
    ("document", "variables", "field", "role"),
    [
        pytest.param(VERIFY, {"t": SURROGATE}, "token", None, id="verifyEmail"),
        pytest.param(BY_EMAIL, {"e": SURROGATE}, "email", None, id="rightsByEmail"),
        pytest.param(OPEN_CASE, {"s": SURROGATE, "m": "m"}, "subject", "customer", id="case"),
        pytest.param(OPEN_CASE, {"s": "s", "m": SURROGATE}, "message", "customer", id="message"),
        pytest.param(SEARCH, {"q": SURROGATE}, "search", "customer_care", id="search"),
        pytest.param(CAMPAIGN, {"s": SURROGATE, "t": "t"}, "subject", "marketing", id="campaign"),
        pytest.param(CAMPAIGN, {"s": "s", "t": SURROGATE}, "bodyText", "marketing", id="body"),
    ],
)
async def test_a_lone_surrogate_is_refused_and_nothing_is_written(
    gql: GQL,
    services: Services,
    document: str,
    variables: dict[str, str],
    field: str,
    role: str | None,
) -> None:
    token = None
    if role == "customer":
        token = await customer_token(gql)
    elif role:
        token = await employee_token(gql, services, role)
    before = await row_counts()
    refused(await post(gql, document, variables, token), field)
    assert await row_counts() == before


NUL_CASES = [
    pytest.param(REGISTER, {"i": registration(phone="+44\x0020 7946 0958")}, "input.phone"),
    pytest.param(
        REGISTER,
        {"i": registration(address={"line1": "1\x00", "city": "L", "country": "GB"})},
        "input.address.line1",
    ),
    pytest.param(LOGIN, {"e": "jane.doe@example.com\x00", "p": PASSWORD}, "email"),
    pytest.param(BY_EMAIL, {"e": "\x00"}, "email"),
    pytest.param(VERIFY, {"t": "\x00"}, "token"),
    pytest.param('mutation { verifyEmail(token: "a\\u0000") { __typename } }', {}, "token"),
]


@pytest.mark.parametrize(("document", "variables", "field"), NUL_CASES)
async def test_nul_is_refused_whatever_the_database(
    gql: GQL, document: str, variables: dict[str, Any], field: str
) -> None:
    before = await row_counts()
    refused(await post(gql, document, variables), field)
    assert await row_counts() == before


@pytest.mark.parametrize("control", ["\x00", "\x0b", "\u2028", "\x85", "\n", "\x1b", "\u202e"])
async def test_a_control_character_in_a_campaign_subject_is_refused_at_creation(
    gql: GQL, services: Services, control: str
) -> None:
    token = await employee_token(gql, services, "marketing")
    refused(await post(gql, CAMPAIGN, {"s": f"Sale{control}now", "t": "t"}, token), "subject")
    assert await Campaign.all().count() == 0


async def test_free_text_keeps_tabs_line_breaks_and_bidi_controls(
    gql: GQL, services: Services
) -> None:
    token = await customer_token(gql)
    message = "Hello,\r\n\tmy order\u202e123\u202c is late.\n"
    body = await post(gql, OPEN_CASE, {"s": "Late order", "m": message}, token)
    assert body["data"]["openSupportCase"]["__typename"] == "SupportCase", body
    assert (await SupportCase.get()).message == message.strip()
    marketing = await employee_token(gql, services, "marketing")
    body = await post(gql, CAMPAIGN, {"s": "Sale", "t": "Line one\nLine two"}, marketing)
    assert body["data"]["createCampaign"]["__typename"] == "Campaign", body


async def test_right_to_left_text_with_its_marks_is_accepted(gql: GQL) -> None:
    rothschild = "\u05e8\u05d5\u05d8\u05e9\u05d9\u05dc\u05d3"  # Hebrew, written right to left
    tel_aviv = "\u05ea\u05dc \u05d0\u05d1\u05d9\u05d1"
    line1 = f"\u200f{rothschild} 1"  # with a right-to-left mark
    address = {"line1": line1, "city": tel_aviv, "country": "IL", "postalCode": "6688101"}
    body = await post(gql, REGISTER, {"i": registration(address=address)})
    assert body["data"]["register"]["__typename"] == "RegistrationAccepted", body
    assert await Customer.all().count() == 1


async def test_a_refused_mutation_runs_nothing_and_logs_nothing(gql: GQL) -> None:
    token = await customer_token(gql)
    before = await AuditEvent.filter(operation="openSupportCase").count()
    refused(await post(gql, OPEN_CASE, {"s": "Tab\there", "m": "m"}, token), "subject")
    assert await SupportCase.all().count() == 0
    assert await AuditEvent.filter(operation="openSupportCase").count() == before


async def test_the_edge_answers_before_authorization(gql: GQL) -> None:
    refused(await post(gql, SUPPORT_QUEUE, {"status": "\x00"}), "status")


async def test_literals_nested_fields_and_fragments_are_checked(gql: GQL) -> None:
    refused(await post(gql, 'query { supportQueue(status: "a\\u0085") { id } }'), "status")
    nested = 'query { me { accessLog(after: "a\\u2028") { pageInfo { hasNextPage } } } }'
    refused(await post(gql, nested), "after")
    fragment = """
    query Q($after: String) { ...Me }
    fragment Me on Query { me { visits(after: $after) { pageInfo { hasNextPage } } } }
    """
    refused(await post(gql, fragment, {"after": "a\x0b"}), "after")
    inline = """
    mutation { login(email: "a@example.com", password: "p") {
      ... on LoginSuccess { customer { visits(after: "a\\u0000") { pageInfo { hasNextPage } } } }
    } }
    """
    refused(await post(gql, inline), "after")


async def test_a_schema_default_passes_the_edge(gql: GQL) -> None:
    body = await post(gql, "query { supportQueue { id } }")
    assert body["errors"][0]["extensions"]["code"] == "UNAUTHENTICATED"


async def test_the_message_never_quotes_the_input(gql: GQL) -> None:
    for value in ("MARKER\x00", "MARKER\x0b", "MARKER" * 300, "MARKER\ud800"):
        body = await post(gql, LOGIN, {"e": value, "p": PASSWORD})
        refused(body, "email")
        assert "MARKER" not in json.dumps(body)


async def test_a_flood_of_bad_items_gets_at_most_a_few_errors(gql: GQL, services: Services) -> None:
    token = await employee_token(gql, services, "legal")
    document = """
    mutation($c: [String!]!) { placeLegalHold(customerId: "x", categories: $c, reason: "r",
      reference: "r") { __typename } }
    """
    body = await post(gql, document, {"c": ["\x00"] * 50}, token)
    refused(body, *(f"categories[{i}]" for i in range(MAX_ERRORS)))
