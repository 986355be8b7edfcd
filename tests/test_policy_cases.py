"""Policy tests as data (authz/policy_cases.csv): the packaged cases hold against the
seeded database policy and authz/policy.csv; a wrong expectation or a malformed file is
reported with its line; `custos policy test` exits 0, 1 or 2 accordingly."""

from __future__ import annotations

from pathlib import Path

import pytest

from authz.enforcer import Authorizer
from authz.policy_cases import (
    ROLES,
    Case,
    MalformedFile,
    default_cases,
    enforcer_from_csv,
    load_cases,
    run_cases,
)
from authz.registry import Category
from tests.cli_helpers import REPO, custos, migrated_file

POLICY_CSV = REPO / "authz" / "policy.csv"
HEADER = "role,category,action,purpose,condition,expected\n"
PERSONAL = [c.value for c in Category if c is not Category.ACCOUNT_CREDENTIALS]
SEPARATED_ACTIONS = ("read", "read_masked", "export", "erase", "disclose")


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


@pytest.fixture(scope="module")
def cases() -> list[Case]:
    return load_cases(default_cases())


def test_the_default_cases_cover_the_role_table(cases: list[Case]) -> None:
    assert len(cases) >= 100
    assert {c.role for c in cases} == ROLES
    assert {c.category for c in cases} == {c.value for c in Category}
    assert any(c.expected for c in cases)
    for role in ("admin", "auditor"):
        covered = {(c.category, c.action) for c in cases if c.role == role and not c.expected}
        missing = {(cat, a) for cat in PERSONAL for a in SEPARATED_ACTIONS} - covered
        assert not missing, (role, sorted(missing))


async def test_the_default_cases_pass_against_the_database_policy(cases: list[Case]) -> None:
    report = run_cases(cases, (await Authorizer.load()).enforcer)
    assert not report.failures, [f.describe() for f in report.failures]
    assert report.summary == f"{len(cases)} passed, 0 failed"


def test_the_default_cases_pass_against_policy_csv(cases: list[Case]) -> None:
    report = run_cases(cases, enforcer_from_csv(POLICY_CSV))
    assert not report.failures, [f.describe() for f in report.failures]


def test_a_wrong_expectation_is_reported_with_its_line_and_rule(tmp_path: Path) -> None:
    path = _write(
        tmp_path,
        "cases.csv",
        HEADER
        + "# a comment line counts as a line\n"
        + "customer_care,contact.email,read,support,open_case,allow\n"
        + "\n"
        + "customer_care,contact.email,read,support,open_case,deny\n"
        + "admin,contact.email,read,support,open_case,deny\n",
    )
    report = run_cases(load_cases(path), enforcer_from_csv(POLICY_CSV))
    assert report.summary == "2 passed, 1 failed"
    [failure] = report.failures
    assert failure.case.line == 5
    assert failure.verdict.allowed
    assert failure.describe() == (
        "line 5: customer_care read contact.email for support [open_case]: expected deny, "
        "got allow; rule: customer_care, contact.*, read, support, open_case, allow"
    )


@pytest.mark.parametrize(
    ("row", "problem"),
    [
        ("astronaut,contact.email,read,support,*,deny", "unknown role 'astronaut'"),
        ("admin,contact.email,read,support,*,maybe", "expected must be allow or deny"),
        ("admin,contact.email,read,support,deny", "expected 6 columns, got 5"),
        ("admin,contact.email,read,support,*,deny,x", "expected 6 columns, got 7"),
        ("admin,contact.mail,read,support,*,deny", "unknown category 'contact.mail'"),
        ("admin,contact.email,peek,support,*,deny", "unknown action 'peek'"),
        ("admin,contact.email,read,fun,*,deny", "unknown purpose 'fun'"),
        ("admin,contact.email,read,support,open_case;vip,deny", "unknown condition 'vip'"),
    ],
)
def test_a_malformed_case_names_its_line(tmp_path: Path, row: str, problem: str) -> None:
    ok = "legal,contact.email,read,legal,*,allow\n"
    path = _write(tmp_path, "bad.csv", HEADER + ok + "\n" + row + "\n" + ok)
    with pytest.raises(MalformedFile) as caught:
        load_cases(path)
    assert caught.value.line == 4
    assert problem in caught.value.problem
    assert str(caught.value).startswith(f"{path}:4: ")


def test_a_missing_header_is_malformed(tmp_path: Path) -> None:
    path = _write(tmp_path, "bad.csv", "legal,contact.email,read,legal,*,allow\n")
    with pytest.raises(MalformedFile, match=r":1: the header must be"):
        load_cases(path)


def test_a_malformed_policy_file_names_its_line(tmp_path: Path) -> None:
    path = _write(tmp_path, "policy.csv", "# rules\np, admin, contact.*, *, *, *, deny\nx, a\n")
    with pytest.raises(MalformedFile, match=r":3: a rule starts with p or g"):
        enforcer_from_csv(path)


# The command, as a real process against its own migrated SQLite file.


@pytest.fixture(scope="module")
def env(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    _, environment = migrated_file(tmp_path_factory.mktemp("policy"), "cli.sqlite3", "pass")
    return environment


def test_the_command_passes_the_default_cases(env: dict[str, str], cases: list[Case]) -> None:
    done = custos(env, "policy", "test")
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip() == f"{len(cases)} passed, 0 failed"


def test_the_command_exits_1_on_a_failing_case(env: dict[str, str], tmp_path: Path) -> None:
    path = _write(tmp_path, "cases.csv", HEADER + "admin,contact.email,read,support,*,allow\n")
    done = custos(env, "policy", "test", str(path))
    assert done.returncode == 1, done.stderr
    assert "line 2: admin read contact.email for support [*]: expected allow, got deny" in (
        done.stdout
    )
    assert done.stdout.splitlines()[-1] == "0 passed, 1 failed"


def test_the_command_exits_2_on_a_malformed_file(env: dict[str, str], tmp_path: Path) -> None:
    path = _write(tmp_path, "cases.csv", HEADER + "admin,contact.email,read,support,*,yes\n")
    done = custos(env, "policy", "test", str(path))
    assert done.returncode == 2
    assert f"{path}:2: expected must be allow or deny" in done.stderr


def test_a_candidate_policy_letting_admin_read_email_fails_separation_of_duties(
    env: dict[str, str], tmp_path: Path
) -> None:
    # The grant replaces admin's contact deny, which would otherwise override it.
    text = POLICY_CSV.read_text(encoding="utf-8")
    deny = "p, admin, contact.*, *, *, *, deny"
    assert deny in text
    grant = "p, admin, contact.email, read, *, *, allow"
    path = _write(tmp_path, "candidate.csv", text.replace(deny, grant))
    done = custos(env, "policy", "test", "--policy", str(path))
    assert done.returncode == 1, done.stderr
    failures = [line for line in done.stdout.splitlines() if line.startswith("FAIL ")]
    assert failures
    assert all(" admin read contact.email " in line for line in failures)
    assert all("rule: admin, contact.email, read, *, *, allow" in line for line in failures)
