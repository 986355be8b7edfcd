"""Every link in every mail Custos sends lands on a page that answers 200: each template
function of api/mail/templates.py is rendered with sample values for a real server's public
URL, and each address in its text that points at the server is fetched from that server.

A template with a parameter this test has no sample for fails it, so a new template cannot
slip by. Export links need a real, unused token: tests/test_export_download.py opens one and
checks its 200 page; unsubscribe links are not in these templates (campaign mail) and are
tested in tests/test_unsubscribe*.py."""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from api.mail import templates
from api.mail.links import Page, page_url
from api.mail.outbox import Mail
from api.settings import Settings
from tests.browser.harness import LiveServer, links, live_server

COVERED_ELSEWHERE = {"/exports/": "tests/test_export_download.py"}


@pytest.fixture(scope="module")
def server(settings: Settings, tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    with live_server(settings.database_url, tmp_path_factory.mktemp("links")) as live:
        yield live


def _samples(settings: Settings) -> dict[str, Any]:
    later = datetime.now(UTC) + timedelta(days=7)
    return {
        "settings": settings,
        "public_url": settings.public_url,
        "token": "sample-token",
        "hours": 48,
        "minutes": 15,
        "version": "2",
        "effective_at": later,
        "expires_at": later,
        "summary": "What changes.",
        "kind": "access",
        "request_id": "R-1",
        "code": "123456",
        "due": "8 January 2027",
        "reason": "A reason.",
        "approved": True,
        "erased": False,
        "link": page_url(settings, Page.RESET_PASSWORD, token="sample-token"),
    }


def mail_templates() -> list[tuple[str, Callable[..., Mail]]]:
    return [
        (name, function)
        for name, function in inspect.getmembers(templates, inspect.isfunction)
        if function.__module__ == templates.__name__
        and inspect.signature(function).return_annotation in (Mail, "Mail")
    ]


def test_every_link_in_every_mail_answers_200(server: LiveServer, settings: Settings) -> None:
    served = settings.model_copy(update={"public_url": server.url})
    samples = _samples(served)
    checked: list[str] = []
    assert len(mail_templates()) >= 10
    for name, function in mail_templates():
        parameters = inspect.signature(function).parameters
        missing = [p for p in parameters if p not in samples]
        assert not missing, f"templates.{name}: no sample for {missing}: add one here"
        mail = function(**{p: samples[p] for p in parameters})
        for url in links(mail.body):
            assert url.startswith(server.url + "/"), f"templates.{name} links elsewhere: {url}"
            if any(part in url for part in COVERED_ELSEWHERE):
                continue
            # a page for signed-in customers sends a stranger to sign in first, and back
            # to it afterwards: the link works once the reader signs in
            answer = httpx.get(url, timeout=10, follow_redirects=True)
            assert answer.status_code == 200, (
                f"templates.{name}: {url} answers {answer.status_code}"
            )
            page = url.split("?")[0].rsplit("/", 1)[1]
            if answer.history:
                assert [r.status_code for r in answer.history] == [303], url
                assert str(answer.url).endswith(f"/privacy/sign-in?next={page}"), answer.url
            checked.append(name)
    # the mails that link to the privacy centre today: every page they link to is built
    assert {
        "verify_email",
        "already_registered",
        "policy_notice",
        "password_reset",
        "rights_code",
        "rights_received",
        "export_ready",
    } <= set(checked)


def test_mail_links_go_to_the_shops_own_pages_when_it_has_them(settings: Settings) -> None:
    own = settings.model_copy(
        update={"page_urls": {"verify-email": "https://shop.example/confirm?from=mail"}}
    )
    mail = templates.verify_email(settings=own, token="a b", hours=48)
    assert "https://shop.example/confirm?from=mail&token=a+b\n" in mail.body
    notice = templates.policy_notice(
        settings=own, version="2", effective_at=datetime.now(UTC), summary="x"
    )
    assert "https://shop.example.test/privacy/privacy-policy\n" in notice.body
