"""The shop's colours as a style sheet (`GET {path}/theme.css`): the pages' CSP allows no
inline style, so the primary colour of the settings comes in as CSS custom properties, with
the text colours that keep WCAG contrast on it and beside it."""

from __future__ import annotations

from api.settings import Settings

DARK, LIGHT = "#000000", "#ffffff"
AA_TEXT = 4.5


def _luminance(colour: str) -> float:
    """WCAG 2 relative luminance of `#rrggbb`."""
    channels = [int(colour[i : i + 2], 16) / 255 for i in (1, 3, 5)]
    linear = [c / 12.92 if c <= 0.03928 else ((c + 0.055) / 1.055) ** 2.4 for c in channels]
    return 0.2126 * linear[0] + 0.7152 * linear[1] + 0.0722 * linear[2]


def contrast(a: str, b: str) -> float:
    """WCAG 2 contrast ratio of two `#rrggbb` colours (1 to 21)."""
    high, low = sorted((_luminance(a), _luminance(b)), reverse=True)
    return (high + 0.05) / (low + 0.05)


def theme_css(settings: Settings) -> str:
    """`--primary` (buttons, the banner's rule), `--on-primary` (text on it: black or white,
    whichever contrasts more) and `--link` (the primary colour where it reads on white,
    else near-black)."""
    primary = settings.shop_primary_colour.lower()
    on_primary = LIGHT if contrast(primary, LIGHT) >= contrast(primary, DARK) else DARK
    link = primary if contrast(primary, LIGHT) >= AA_TEXT else DARK
    return f":root{{--primary:{primary};--on-primary:{on_primary};--link:{link}}}\n"
