"""One request per intent by email address (issue 20, point 4): asked again while a request
of the kind is open, no second request; a fresh code only once the last one is older than
the repeat window; ten at once are one."""

from __future__ import annotations

import asyncio

from api.clock import FakeClock
from api.services import Services
from models import RightsRequest
from tests.conftest import GQL, mails, register
from tests.intake_helpers import run_intake
from tests.test_one_intent import N, fan_in
from tests.test_rights_requests import BY_EMAIL

EMAIL = "jane.doe@example.com"


async def ask(gql: GQL, services: Services, kind: str = "ERASURE") -> None:
    body = await gql(BY_EMAIL, {"email": EMAIL, "kind": kind})
    assert (
        body["data"]["submitRightsRequestByEmail"]["__typename"] == "RightsRequestByEmailAccepted"
    )
    await run_intake(services)


async def test_asking_again_by_email_within_the_window_mails_nothing(
    gql: GQL, services: Services, clock: FakeClock
) -> None:
    await register(gql)
    await ask(gql, services)
    assert len(await mails("rights_code", EMAIL)) == 1
    # within the window (the code's 15 minutes by default): the same request, no new code
    clock.advance(minutes=14)
    await ask(gql, services)
    assert len(await mails("rights_code", EMAIL)) == 1
    assert await RightsRequest.filter(kind="erasure").count() == 1
    # past it (the code mailed has expired): a fresh code for the same request
    clock.advance(minutes=2)
    await ask(gql, services)
    assert len(await mails("rights_code", EMAIL)) == 2
    assert await RightsRequest.filter(kind="erasure").count() == 1
    # another kind is another intent
    await ask(gql, services, "ACCESS")
    assert len(await mails("rights_code", EMAIL)) == 3
    assert await RightsRequest.all().count() == 2


async def test_the_window_is_a_setting(gql: GQL, services: Services, clock: FakeClock) -> None:
    services.settings = services.settings.model_copy(update={"rights_repeat_window_minutes": 60})
    await register(gql)
    await ask(gql, services)
    clock.advance(minutes=59)
    await ask(gql, services)
    assert len(await mails("rights_code", EMAIL)) == 1
    clock.advance(minutes=2)
    await ask(gql, services)
    assert len(await mails("rights_code", EMAIL)) == 2


async def test_ten_requests_by_email_at_once_open_one_and_mail_one_code(
    gql: GQL, services: Services
) -> None:
    await register(gql)
    variables = {"email": EMAIL, "kind": "ERASURE"}
    answers = await fan_in(gql, lambda c: GQL(c)(BY_EMAIL, variables))
    assert {a["data"]["submitRightsRequestByEmail"]["__typename"] for a in answers} == {
        "RightsRequestByEmailAccepted"
    }
    # the intake worker, run by two servers at once
    await asyncio.gather(run_intake(services), run_intake(services))
    assert await RightsRequest.filter(kind="erasure").count() == 1
    assert len(await mails("rights_code", EMAIL)) == 1
    assert len(answers) == N
