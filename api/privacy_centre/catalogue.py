"""The message catalogue: every string a page shows, one folder per language
(messages/LANG/, a JSON file of flat keys per page plus common.json), and the choice of
language for a request: `?lang=`, else the best of `Accept-Language`, else English."""

from __future__ import annotations

import json
from collections.abc import Mapping
from functools import cache
from pathlib import Path

LANGUAGES = ("en", "fr")
"""The catalogues, the first the default."""
DEFAULT = LANGUAGES[0]
_DIRECTORY = Path(__file__).parent / "messages"


@cache
def messages(lang: str) -> Mapping[str, str]:
    """The catalogue of `lang` (one of LANGUAGES): the files of messages/LANG/ merged; a
    key defined in two files is an error, as one of them would silently win."""
    merged: dict[str, str] = {}
    for path in sorted((_DIRECTORY / lang).glob("*.json")):
        data = json.loads(path.read_text("utf-8"))
        where = f"messages/{lang}/{path.name}"
        if not isinstance(data, dict) or not all(isinstance(v, str) for v in data.values()):
            raise ValueError(f"{where} must be an object of strings")
        if twice := merged.keys() & data.keys():
            raise ValueError(f"{where} repeats {sorted(twice)[0]}")
        merged.update(data)
    return merged


def fill(message: str, params: Mapping[str, str]) -> str:
    """`message` with each `{name}` replaced by its parameter (as static/centre.js does)."""
    for name, value in params.items():
        message = message.replace("{" + name + "}", value)
    return message


def choose_language(query_lang: str | None, accept_language: str | None) -> tuple[str, bool]:
    """The language of a page, and whether it was asked for in the address (`?lang=`), in
    which case the page's links keep it."""
    if query_lang in LANGUAGES:
        return query_lang, True
    best, best_q = DEFAULT, 0.0
    for position, item in enumerate((accept_language or "")[:512].split(",")[:20]):
        tag, _, params = item.strip().partition(";")
        primary = tag.strip().lower().split("-")[0]
        quality = 1.0
        for param in params.split(";"):
            name, _, value = param.strip().partition("=")
            if name == "q":
                try:
                    quality = float(value)
                except ValueError:
                    quality = 0.0
        # Earlier entries win ties, as the header lists them by preference.
        score = quality - position * 1e-6
        if primary in LANGUAGES and quality > 0 and score > best_q:
            best, best_q = primary, score
    return best, False
