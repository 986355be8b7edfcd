"""The privacy centre's routes under `CUSTOS_PRIVACY_CENTRE_PATH` (default `/privacy`):

- `GET {path}/` sends the reader to their profile when signed in, else to sign in;
- `GET {path}/{page}` is a page (api/privacy_centre/pages.py), 404 for any other name; a
  page that needs a signed-in customer sends anyone else to sign in first;
- `GET {path}/theme.css` is the shop's colours, `GET {path}/static/...` the style sheet and
  the pages' modules.

Pages carry their own Content-Security-Policy: scripts, styles and connections to this
origin only, images from it or data: URIs, nothing inline but JSON data, no frames."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import urlencode

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import BaseRoute, Mount, Route
from starlette.staticfiles import StaticFiles

from api.context import session_token
from api.mail.links import Page
from api.privacy_centre.catalogue import choose_language
from api.privacy_centre.rendering import Reader, base_path, href, known_page, render_page
from api.privacy_centre.theme import theme_css
from api.services import Services
from api.settings import Settings

CSP = (
    "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; "
    "img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"
)
STATIC = Path(__file__).parent / "static"
_QUERY_KEPT = 10
"""At most this many query parameters are carried into a page's language links."""
_NOT_CARRIED = frozenset({"lang", "token"})


async def _signed_in(request: Request) -> bool:
    services: Services = request.app.state.services
    viewer = await services.sessions.resolve(
        session_token(request), policy_version=services.authorizer.version
    )
    return viewer.is_customer


def _reader(request: Request, *, signed_in: bool) -> Reader:
    lang, in_query = choose_language(
        request.query_params.get("lang"), request.headers.get("accept-language")
    )
    # a link's token (verification, reset) never goes into the page's own links: the
    # page's script keeps it for the tab (docs/PRIVACY_CENTRE.md)
    kept = list(request.query_params.items())[:_QUERY_KEPT]
    query = {k: v for k, v in kept if k not in _NOT_CARRIED}
    return Reader(lang=lang, lang_in_query=in_query, signed_in=signed_in, query=query)


def centre_routes(settings: Settings) -> list[BaseRoute]:
    base = base_path(settings)

    async def index(request: Request) -> Response:
        reader = _reader(request, signed_in=await _signed_in(request))
        page = Page.PROFILE if reader.signed_in else Page.SIGN_IN
        return RedirectResponse(href(settings, page, reader), status_code=303)

    async def page(request: Request) -> Response:
        found = known_page(request.path_params["page"])
        if found is None:
            return PlainTextResponse("Not found.", status_code=404)
        reader = _reader(request, signed_in=await _signed_in(request))
        if found.signed_in and not reader.signed_in:
            target = href(settings, Page.SIGN_IN, reader)
            glue = "&" if "?" in target else "?"
            return RedirectResponse(
                f"{target}{glue}{urlencode({'next': found.name})}", status_code=303
            )
        return HTMLResponse(
            render_page(settings, found, reader),
            headers={
                "Content-Security-Policy": CSP,
                "Content-Language": reader.lang,
                "Vary": "Accept-Language, Cookie",
            },
        )

    css = theme_css(settings)

    async def theme(request: Request) -> Response:
        return Response(css, media_type="text/css")

    return [
        Route(base or "/", index, methods=["GET"]),
        *([Route(f"{base}/", index, methods=["GET"])] if base else []),
        Route(f"{base}/theme.css", theme, methods=["GET"]),
        Mount(f"{base}/static", app=StaticFiles(directory=STATIC), name="privacy-centre-static"),
        Route(f"{base}/{{page}}", page, methods=["GET"]),
    ]
