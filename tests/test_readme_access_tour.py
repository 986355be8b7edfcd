"""The README is the entry point and the docs stand on their own; what their examples show is
run by tests/test_docs.py (the access-policy tour that this file used to run from the README
is now in docs/API_STAFF.md, run there from a fresh `make run`). Here, what a reader relies
on beyond the examples: the README's tour covers every role and links to the reference;
every link between the docs resolves inside the repository; nothing in the repository points
to a file outside it; the sections of docs/ARCHITECTURE.md are the ones the code's
docstrings name; docs/OPERATIONS.md documents every setting of api/settings.py."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

from api.settings import Settings

REPO = Path(__file__).parents[1]
README = (REPO / "README.md").read_text("utf-8")
DOCS = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
LINK = re.compile(r"\]\(([^)\s]+)\)")
ARCHITECTURE_SECTIONS = [
    *("Promises", "Vocabulary", "Authorization", "Decision log", "Rights requests", "Mail"),
    *("Security floor", "Numbers", "Configuration", "Stack", "HTTP API"),
]
SKIP_DIRS = {".git", ".venv", "data", "node_modules", "custos.egg-info"}
TEXT_SUFFIXES = {".py", ".md", ".toml", ".cfg", ".ini", ".yaml", ".yml", ".txt", ".csv", ".conf"}


def repository_text_files() -> list[Path]:
    found = []
    for path in REPO.rglob("*"):
        parts = set(path.relative_to(REPO).parts)
        if parts & SKIP_DIRS or any(p.endswith("cache") for p in parts) or not path.is_file():
            continue
        if path.suffix in TEXT_SUFFIXES or path.name in {"Makefile", "Dockerfile"}:
            found.append(path)
    return found


def test_the_readme_tours_every_role_and_links_the_reference() -> None:
    tour = README[README.index("## A tour, role by role") : README.index("## What Custos")]
    headings = re.findall(r"^### (.+)$", tour, re.M)
    assert headings == [
        "A customer",
        "A customer, in a browser: the privacy centre",
        "Customer care, fraud, marketing",
        "Privacy officer and legal",
        "Auditor",
        "Admin",
        "Operator",
    ]
    for command in ("make run", "make test", "custos audit verify"):
        assert command in README
    for doc in (
        *("API_CUSTOMERS", "API_STAFF", "OPERATIONS", "AUDITING", "ARCHITECTURE", "BENCHMARKS"),
        *("CLI", "OBSERVABILITY", "GOING_LIVE", "DECISIONS", "SECURITY", "PRIVACY_CENTRE"),
    ):
        assert f"](docs/{doc}.md)" in README, doc
    # the privacy centre is shown, with a screenshot that exists
    [shot] = re.findall(r"!\[[^\]]+\]\((docs/screenshots/[^)]+\.png)\)", README)
    assert (REPO / shot).is_file()
    assert "](LICENSE)" in README
    assert "Apache-2.0" in README
    assert len(README.encode()) < 16_000, "the README is the entry point: move reference to docs/"


@pytest.mark.parametrize("path", DOCS, ids=[p.relative_to(REPO).as_posix() for p in DOCS])
def test_links_resolve_inside_the_repository(path: Path) -> None:
    text = path.read_text("utf-8")
    for target in LINK.findall(text):
        if re.match(r"[a-z]+:", target) or target.startswith("#"):
            continue
        file = (path.parent / target.split("#")[0]).resolve()
        assert file.is_relative_to(REPO), f"{path.name}: {target} is outside the repository"
        assert file.exists(), f"{path.name}: {target} does not exist"


def test_nothing_points_outside_the_repository() -> None:
    outside = ["../" + "shared", "DESIGN" + ".md", "DESIGN" + " section"]
    for path in repository_text_files():
        text = path.read_text("utf-8", errors="replace")
        for needle in outside:
            assert needle not in text, f"{path.relative_to(REPO)} refers to {needle}"


def test_architecture_has_the_sections_the_code_points_to() -> None:
    text = (REPO / "docs" / "ARCHITECTURE.md").read_text("utf-8")
    assert re.findall(r"^## (.+)$", text, re.M) == ARCHITECTURE_SECTIONS
    known = [s.lower() for s in ARCHITECTURE_SECTIONS]
    pointers = 0
    for path in repository_text_files():
        source = path.read_text("utf-8", errors="replace")
        for pointer in re.findall(r"docs/ARCHITECTURE\.md:\s+([^)\"]+)", source):
            pointers += 1
            named = " ".join(pointer.split()).lower()
            assert any(named.startswith(s) for s in known), (
                f"{path.relative_to(REPO)} names a section docs/ARCHITECTURE.md lacks ({pointer!r})"
            )
    assert pointers > 20


def test_operations_documents_every_setting() -> None:
    text = (REPO / "docs" / "OPERATIONS.md").read_text("utf-8")
    for name in Settings.model_fields:
        variable = "DATABASE_URL" if name == "database_url" else f"CUSTOS_{name.upper()}"
        assert f"`{variable}`" in text, f"docs/OPERATIONS.md does not document {variable}"
