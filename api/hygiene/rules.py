"""What a text argument may hold: its kind (one line, free text or a secret) and its length.

Refused everywhere: NUL, which PostgreSQL cannot store in text at all, and unpaired
surrogates (U+D800..U+DFFF, category Cs), which are not Unicode: no encoder, hash or database
driver takes them. The other C0 and C1 controls (category Cc: DEL, NEL U+0085, VT, ...) and
the line and paragraph separators U+2028/U+2029 are refused too, except that free text may
hold tabs and line breaks (\\t, \\n, \\r): a control character in a subject line or a name
breaks mail headers, logs and CSV exports, or lets a value look like two.

Bidirectional embeddings, overrides and isolates (U+202A..U+202E, U+2066..U+2069) are refused
in one-line arguments: there they make a value display in another order than it is stored
("Trojan Source"), so a name, subject line or reference staff read could disguise what it
says, while right-to-left text needs none of them (the Unicode bidi algorithm orders it by
itself; the marks LRM, RLM and ALM stay allowed). Free text keeps them: mixed-direction prose
may use them legitimately, and nothing parses it.

Passwords are never shown, stored or parsed, and the schema promises "any Unicode": a secret
refuses only NUL and unpaired surrogates, so no password anyone registered is locked out."""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import Enum, auto

# Category Cc is exactly U+0000..U+001F and U+007F..U+009F; Cs is U+D800..U+DFFF.
_NOT_TEXT = re.compile("[\x00\ud800-\udfff]")
_CONTROL_IN_LINE = re.compile("[\x00-\x1f\x7f-\x9f\u2028\u2029]")
_CONTROL_IN_TEXT = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\u2028\u2029]")
_BIDI_CONTROL = re.compile("[\u202a-\u202e\u2066-\u2069]")


class Kind(Enum):
    LINE = auto()
    """One line: no control characters, no bidi overrides."""
    TEXT = auto()
    """Free text: tabs, line breaks and bidi controls too."""
    SECRET = auto()
    """A password: anything but NUL and unpaired surrogates."""


@dataclass(frozen=True, slots=True)
class Rule:
    max_length: int
    """In code points, as the database counts characters."""
    kind: Kind = Kind.LINE


def problem(value: str, rule: Rule) -> str | None:
    """Why `value` breaks `rule`, in words that never quote it; None when it is fine."""
    if _NOT_TEXT.search(value):
        return "contains NUL or an unpaired surrogate, which is not text."
    if len(value) > rule.max_length:
        return f"is too long: use at most {rule.max_length:,} characters."
    if rule.kind is Kind.LINE and _CONTROL_IN_LINE.search(value):
        return "must be one line without control characters."
    if rule.kind is Kind.TEXT and _CONTROL_IN_TEXT.search(value):
        return "contains a control character; only tabs and line breaks are allowed."
    if rule.kind is Kind.LINE and _BIDI_CONTROL.search(value):
        return "contains a bidirectional override, which would make it display reordered."
    return None
