"""The addresses of the privacy centre's pages (api/mail/links.py): under the configured
path of the public URL by default, the shop's own page when it sets one, query values
always encoded."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from api.mail.links import Page, page_url
from api.settings import Settings


def test_pages_are_under_the_privacy_centre_path_of_the_public_url() -> None:
    settings = Settings(public_url="https://shop.example/", privacy_centre_path="/my/privacy")
    assert page_url(settings, Page.SIGN_IN) == "https://shop.example/my/privacy/sign-in"


def test_a_token_is_encoded_in_the_query_string() -> None:
    settings = Settings(public_url="https://shop.example")
    url = page_url(settings, Page.VERIFY_EMAIL, token="a b&c=d/é")
    assert url == "https://shop.example/privacy/verify-email?token=a+b%26c%3Dd%2F%C3%A9"


def test_a_page_the_shop_serves_itself_is_linked_instead() -> None:
    # given the shop's own sign-in page, which already has a query string
    settings = Settings(page_urls={"sign-in": "https://shop.example/login?from=mail"})
    # then links go there, their query appended, and other pages stay Custos's own
    assert page_url(settings, Page.SIGN_IN, next="/x") == (
        "https://shop.example/login?from=mail&next=%2Fx"
    )
    assert page_url(settings, Page.PROFILE).endswith("/privacy/profile")


@pytest.mark.parametrize("url", ["/login", "javascript:alert(1)", "shop.example/login"])
def test_a_shop_page_must_be_an_absolute_web_address(url: str) -> None:
    with pytest.raises(ValidationError):
        Settings(page_urls={"sign-in": url})


@pytest.mark.parametrize("path", ["privacy", "/Privacy Centre", "/../x?"])
def test_the_path_is_a_plain_absolute_path(path: str) -> None:
    with pytest.raises(ValidationError):
        Settings(privacy_centre_path=path)
