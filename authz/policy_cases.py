"""Policy tests as data (issue 14): a CSV of role x category x action x purpose x
conditions -> allow|deny, run against the database policy or a candidate policy file.

The case file is the readable spec of the role table; an operator runs it against a
changed policy.csv before proposing the change (`custos policy test --policy FILE`).
Cases are asked with the role itself as the Casbin subject, which `g(r.sub, p.sub)`
matches like an employee holding only that role (plus `staff`, as every job role is).

The cases test the policy itself, as Casbin answers it: the engine's value-blind guard
(authz/enforcer.py) is not applied, so a candidate policy that grants an admin a value
fails its separation-of-duties cases even though the engine would still deny it, as
authz/separation.py refuses such a change."""

from __future__ import annotations

import csv
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from importlib import resources
from importlib.resources.abc import Traversable
from pathlib import Path

import casbin

from authz.enforcer import CUSTOMER_SUBJECT, memory_enforcer
from authz.registry import CONDITIONS as OBJECT_CONDITIONS
from authz.registry import PURPOSES, Action, Category, Role

HEADER = ("role", "category", "action", "purpose", "condition", "expected")
ROLES = frozenset({*(r.value for r in Role), CUSTOMER_SUBJECT})
CONDITIONS = frozenset(OBJECT_CONDITIONS)
"""The conditions an object can carry (the registry's one list)."""
_CATEGORIES = frozenset(c.value for c in Category)
_ACTIONS = frozenset(a.value for a in Action)
_EXPECTED = {"allow": True, "deny": False}
_NO_CONDITION = ("", "*")
_RULE_WIDTH = {"p": 7, "g": 3}
"""Cells of a policy.csv row, the ptype included (authz/model.conf)."""


class MalformedFile(ValueError):
    """A case or policy file that does not parse; the CLI exits 2 with this message."""

    def __init__(self, source: str, line: int, problem: str) -> None:
        super().__init__(f"{source}:{line}: {problem}")
        self.source = source
        self.line = line
        self.problem = problem


@dataclass(frozen=True, slots=True)
class Case:
    line: int
    role: str
    category: str
    action: str
    purpose: str
    conditions: tuple[str, ...]
    expected: bool

    def describe(self) -> str:
        conditions = ";".join(self.conditions) or "*"
        return f"{self.role} {self.action} {self.category} for {self.purpose} [{conditions}]"


@dataclass(frozen=True, slots=True)
class Verdict:
    allowed: bool
    rule: str
    """The policy row that decided, as text; empty when none matched (default deny)."""


@dataclass(frozen=True, slots=True)
class Outcome:
    case: Case
    verdict: Verdict

    @property
    def passed(self) -> bool:
        return self.verdict.allowed is self.case.expected

    def describe(self) -> str:
        expected = _effect(self.case.expected)
        actual = _effect(self.verdict.allowed)
        rule = self.verdict.rule or "none (default deny)"
        return (
            f"line {self.case.line}: {self.case.describe()}: "
            f"expected {expected}, got {actual}; rule: {rule}"
        )


@dataclass(frozen=True, slots=True)
class Report:
    outcomes: tuple[Outcome, ...]

    @property
    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if not o.passed]

    @property
    def summary(self) -> str:
        failed = len(self.failures)
        return f"{len(self.outcomes) - failed} passed, {failed} failed"


def _effect(allowed: bool) -> str:
    return "allow" if allowed else "deny"


def default_cases() -> Traversable:
    """The packaged case file: the role table of authz/policy.csv, row by row."""
    return resources.files("authz").joinpath("policy_cases.csv")


def _rows(text: str, source: str) -> Iterator[tuple[int, list[str]]]:
    """Numbered rows of cells, skipping blank and `#` lines; one row per physical line so
    that every error names the line an operator sees in an editor."""
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip() or line.lstrip().startswith("#"):
            continue
        try:
            cells = next(csv.reader([line], strict=True))
        except csv.Error as exc:
            raise MalformedFile(source, number, f"not CSV: {exc}") from None
        yield number, [cell.strip() for cell in cells]


def _read(path: Path | Traversable) -> tuple[str, str]:
    try:
        return path.read_text(encoding="utf-8"), str(path)
    except (OSError, UnicodeDecodeError) as exc:
        raise MalformedFile(str(path), 0, f"cannot read: {exc}") from None


def _check(source: str, line: int, what: str, value: str, known: Iterable[str]) -> str:
    if value not in known:
        raise MalformedFile(source, line, f"unknown {what} {value!r}")
    return value


def _conditions(source: str, line: int, cell: str) -> tuple[str, ...]:
    if cell in _NO_CONDITION:
        return ()
    names = [name.strip() for name in cell.split(";")]
    return tuple(sorted({_check(source, line, "condition", n, CONDITIONS) for n in names}))


def _case(source: str, line: int, cells: list[str]) -> Case:
    if len(cells) != len(HEADER):
        raise MalformedFile(source, line, f"expected {len(HEADER)} columns, got {len(cells)}")
    role, category, action, purpose, condition, expected = cells
    if expected not in _EXPECTED:
        raise MalformedFile(source, line, f"expected must be allow or deny, not {expected!r}")
    return Case(
        line=line,
        role=_check(source, line, "role", role, ROLES),
        category=_check(source, line, "category", category, _CATEGORIES),
        action=_check(source, line, "action", action, _ACTIONS),
        purpose=_check(source, line, "purpose", purpose, PURPOSES),
        conditions=_conditions(source, line, condition),
        expected=_EXPECTED[expected],
    )


def load_cases(path: Path | Traversable) -> list[Case]:
    """Parse a case file; the first row is the header. Raises MalformedFile."""
    text, source = _read(path)
    rows = _rows(text, source)
    first = next(rows, None)
    if first is None:
        raise MalformedFile(source, 0, "no header and no cases")
    line, header = first
    if tuple(header) != HEADER:
        raise MalformedFile(source, line, f"the header must be {','.join(HEADER)}")
    cases = [_case(source, number, cells) for number, cells in rows]
    if not cases:
        raise MalformedFile(source, line, "no cases")
    return cases


def numbered_rules(path: Path) -> list[tuple[int, list[str]]]:
    """The `p` and `g` rows of a policy CSV (as `custos migrate` seeds them), each with its
    line. Casbin's own file adapter skips rows it does not know; a candidate policy is
    checked instead."""
    text, source = _read(path)
    rules = []
    for line, cells in _rows(text, source):
        width = _RULE_WIDTH.get(cells[0])
        if width is None:
            raise MalformedFile(source, line, f"a rule starts with p or g, not {cells[0]!r}")
        if len(cells) != width:
            raise MalformedFile(source, line, f"a {cells[0]} rule has {width} cells")
        rules.append((line, cells))
    if not rules:
        raise MalformedFile(source, 0, "no rules")
    return rules


def load_rules(path: Path) -> list[list[str]]:
    """The `p` and `g` rows of a policy CSV, without their lines."""
    return [cells for _, cells in numbered_rules(path)]


def enforcer_from_csv(path: Path) -> casbin.Enforcer:
    """An in-memory enforcer over a candidate policy file, with the served model and
    matcher functions (authz/enforcer.py), so both answer alike."""
    return memory_enforcer(load_rules(path))


def _verdict(enforcer: casbin.Enforcer, case: Case) -> Verdict:
    request = (case.role, case.category, case.action, case.purpose, ",".join(case.conditions))
    allowed, rule = enforcer.enforce_ex(*request)
    return Verdict(bool(allowed), ", ".join(rule))


def run_cases(cases: Iterable[Case], enforcer: casbin.Enforcer) -> Report:
    """Ask `enforcer` (the database's, `Authorizer.enforcer`, or `enforcer_from_csv`)."""
    return Report(tuple(Outcome(case, _verdict(enforcer, case)) for case in cases))
