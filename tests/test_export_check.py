"""verifier/export_check.py: an export of the decision log against a signed checkpoint.
Rows are built from synthetic data with verifier/leaf.py (the reference), the tree with
verifier/merkle.py; every kind of tampering must be named, and the CLI's exit statuses
must say finding (2) apart from unusable input (1)."""

from __future__ import annotations

import json
import os
import random
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from verifier import export_check, leaf, merkle
from verifier.export_check import check_rows
from verifier.note import Checkpoint, Note, Signer, parse_note

ROOT = Path(__file__).resolve().parent.parent
ORIGIN = "custos.example/decisions"
BASE_TIME = 1_700_000_000


def make_row(index: int, rng: random.Random) -> dict[str, Any]:
    return {
        "action": rng.choice(["read", "update", "export"]),
        "actor_id": f"emp-{rng.randrange(50)}" if rng.random() < 0.9 else None,
        "actor_kind": "employee",
        "at": f"2024-05-{1 + index % 28:02d}T12:{index % 60:02d}:00.{index % 999999:06d}+00:00",
        "category": rng.choice(["contact", "billing", "health"]),
        "conditions": "region=eu",
        "decision": rng.choice(["allow", "deny"]),
        "event": "access",
        "operation": "query",
        "policy_version": rng.randrange(1, 9),
        "purpose": "support",
        "reason": "" if index % 3 else 'ticket \u00e9\u2014 #"42"',
        "request_id": f"req-{index}",
        "roles": "support,viewer",
        "rule": "p, support, contact, read",
        "subject_id": ",".join(f"cust-{rng.randrange(1000)}" for _ in range(rng.randrange(3))),
        "leaf_index": index,
        "salt": rng.randbytes(leaf.SALT_BYTES).hex(),
    }


def make_rows(count: int, seed: int = 1) -> list[dict[str, Any]]:
    rng = random.Random(seed)
    return [make_row(i, rng) for i in range(count)]


def reference_hashes(rows: list[dict[str, Any]]) -> list[bytes]:
    return [leaf.row_leaf_hash(r, bytes.fromhex(r["salt"])) for r in rows]


def checkpoint_of(rows: list[dict[str, Any]], size: int | None = None) -> Checkpoint:
    size = len(rows) if size is None else size
    return Checkpoint(ORIGIN, size, merkle.root(reference_hashes(rows[:size])))


def lines_of(rows: list[Any]) -> list[bytes]:
    return [json.dumps(r).encode() + b"\n" for r in rows]


def test_an_intact_export_matches_its_checkpoint() -> None:
    rows = make_rows(300)
    report = check_rows(lines_of(rows), checkpoint_of(rows))
    assert report.ok, report.findings()
    assert report.rows == 300
    assert report.root == checkpoint_of(rows).root
    assert report.summary().startswith("ok: 300 rows")


def test_rows_after_the_checkpoint_are_read_but_not_covered() -> None:
    rows = make_rows(130)
    report = check_rows(lines_of(rows), checkpoint_of(rows, 100))
    assert report.ok
    assert "30 later rows are not covered" in report.summary()


def test_rows_not_yet_in_the_tree_may_only_end_the_export() -> None:
    rows = make_rows(12)
    for row in rows[10:]:
        row["leaf_index"], row["salt"] = None, None
    report = check_rows(lines_of(rows), checkpoint_of(rows[:10], 10))
    assert report.ok, report.findings()
    assert "2 later rows are not covered" in report.summary()
    # within the rows the checkpoint covers, a row without its leaf is a finding
    report = check_rows(lines_of(rows), checkpoint_of(make_rows(12), 12))
    assert not report.ok
    assert any(export_check.PENDING in line for line in report.findings())


@pytest.mark.parametrize("size", [*range(41), 63, 64, 65, 127, 128, 129])
def test_the_streamed_root_is_the_rfc_root_of_every_size(size: int) -> None:
    rows = make_rows(size + 3, seed=size)
    hashes = reference_hashes(rows)
    report = check_rows(lines_of(rows), Checkpoint(ORIGIN, size, merkle.root(hashes[:size])))
    assert report.ok, report.findings()
    assert report.root == merkle.root(hashes[:size])


def test_streaming_keeps_log_n_subtrees() -> None:
    tree = export_check._Tree()
    for i in range(1000):
        tree.add(merkle.leaf_hash(str(i).encode()))
        assert len(tree.stack) == (i + 1).bit_count()
    assert tree.root() == merkle.root([merkle.leaf_hash(str(i).encode()) for i in range(1000)])


def _other_at(row: dict[str, Any]) -> str:
    return str(row["at"]).replace("+00:00", "+00:01")


EDITS: dict[str, Callable[[dict[str, Any]], Any]] = {
    "category": lambda r: "marketing",
    "actor_id": lambda r: "emp-999",
    "subject_id": lambda r: (r["subject_id"] + ",cust-77777").lstrip(","),
    "at": _other_at,
    "salt": lambda r: ("0" if r["salt"][0] != "0" else "1") + r["salt"][1:],
    "policy_version": lambda r: r["policy_version"] + 1,
    "reason": lambda r: r["reason"] + "\u0000",
}


@pytest.mark.parametrize("field", sorted(EDITS))
def test_an_edited_field_is_caught_as_a_rewrite(field: str) -> None:
    rows = make_rows(100)
    # With neither actor nor subjects a row's salt commits to nothing: give it both.
    rows[57] |= {"actor_id": "emp-5", "subject_id": "cust-1"}
    checkpoint = checkpoint_of(rows)
    rows[57][field] = EDITS[field](rows[57])
    report = check_rows(lines_of(rows), checkpoint)
    assert not report.ok
    assert report.rewritten
    assert not report.truncated
    assert report.problem_count == 0
    assert any(line.startswith("rewritten:") for line in report.findings())


def test_the_same_subjects_in_another_order_are_the_same_leaf() -> None:
    # The leaf holds the set of subjects, sorted: not an edit.
    rows = make_rows(20)
    rows[4]["subject_id"] = "cust-1,cust-2"
    checkpoint = checkpoint_of(rows)
    rows[4]["subject_id"] = "cust-2,cust-1"
    assert check_rows(lines_of(rows), checkpoint).ok


def test_a_truncated_export_says_both_sizes() -> None:
    rows = make_rows(100)
    report = check_rows(lines_of(rows[:90]), checkpoint_of(rows))
    assert report.truncated
    assert not report.ok
    assert "the export holds 90 rows, the checkpoint covers 100" in report.findings()[0]


def test_a_missing_row_is_named() -> None:
    rows = make_rows(50)
    checkpoint = checkpoint_of(rows, 40)
    del rows[17]
    report = check_rows(lines_of(rows), checkpoint)
    assert not report.ok
    assert report.root is None
    assert [p.leaf_index for p in report.problems] == [18]
    assert "leaf_index 18 follows 16: rows 17 to 17 are missing" in report.problems[0].reason
    assert report.problems[0].line == 18


def test_reordered_rows_are_named() -> None:
    rows = make_rows(50)
    checkpoint = checkpoint_of(rows)
    rows[10], rows[11] = rows[11], rows[10]
    report = check_rows(lines_of(rows), checkpoint)
    assert not report.ok
    assert report.root is None
    reasons = {p.leaf_index: p.reason for p in report.problems}
    assert "out of order or repeated" in reasons[10]
    assert report.problem_count == 3  # 11 skips 10, 10 goes back, 12 skips 11 (seen)


def test_a_first_row_other_than_zero_is_named() -> None:
    rows = make_rows(5)
    report = check_rows(lines_of(rows[1:]), checkpoint_of(rows, 0))
    assert "the first row has leaf_index 1, not 0" in str(report.problems[0])


BAD_ROWS: dict[str, tuple[Any, str]] = {
    "missing field": ({"category": None}, "missing category"),
    "bad salt": ({"salt": "zz" * 16}, "salt is not 32 hex digits"),
    "short salt": ({"salt": "ab" * 15}, "salt is not 32 hex digits"),
    "salt with spaces": ({"salt": "ab " * 10 + "ab"}, "salt is not 32 hex digits"),
    "number as text": ({"category": 5}, "category is not text or null"),
    "list as text": ({"roles": ["a"]}, "roles is not text or null"),
    "boolean version": ({"policy_version": True}, "policy_version is not a 64-bit"),
    "huge version": ({"policy_version": 1 << 70}, "policy_version is not a 64-bit"),
    "float version": ({"policy_version": 1.5}, "policy_version is not a 64-bit"),
    "naive time": ({"at": "2024-05-01T12:00:00"}, "at is not an ISO 8601 time with a zone"),
    "no time": ({"at": "yesterday"}, "at is not an ISO 8601 time with a zone"),
    "overflowing time": ({"at": "9999-12-31T23:59:59-23:59"}, "with a zone"),
    "numeric time": ({"at": 1700000000}, "at is not ISO 8601 text"),
    "lone surrogate id": ({"actor_id": "emp-\ud800"}, "not valid Unicode"),
    "negative index": ({"leaf_index": -1}, "leaf_index is not a number"),
    "text index": ({"leaf_index": "3"}, "leaf_index is not a number"),
}


@pytest.mark.parametrize("case", sorted(BAD_ROWS))
def test_a_bad_row_is_named_with_its_leaf_index(case: str) -> None:
    change, reason = BAD_ROWS[case]
    rows = make_rows(10)
    checkpoint = checkpoint_of(rows)
    for name, value in change.items():
        if value is None:
            del rows[3][name]
        else:
            rows[3][name] = value
    report = check_rows(lines_of(rows), checkpoint)
    assert not report.ok
    assert report.root is None
    assert len(report.problems) >= 1
    problem = report.problems[0]
    assert reason in problem.reason
    assert problem.line == 4
    assert problem.leaf_index == (3 if "index" not in case else None)
    assert any("cannot be computed" in line for line in report.findings())


@pytest.mark.parametrize(
    "line",
    [
        b"not json\n",
        b"[1, 2]\n",
        b"\xff\xfe\n",
        b"[" * 100_000 + b"\n",
        b'{"a": "' + b"x" * (export_check.MAX_LINE + 1) + b'"}\n',
        b"null\n",
        b"1e999\n",
    ],
)
def test_hostile_lines_are_bad_rows_not_crashes(line: bytes) -> None:
    rows = make_rows(4)
    lines = lines_of(rows)
    lines.insert(2, line)
    report = check_rows(lines, checkpoint_of(rows))
    assert not report.ok
    assert report.problems[0].line == 3
    assert report.problems[0].leaf_index is None


def test_blank_lines_are_skipped() -> None:
    rows = make_rows(6)
    lines = lines_of(rows)
    lines.insert(3, b"   \n")
    lines.append(b"\n")
    assert check_rows(lines, checkpoint_of(rows)).ok


def test_only_the_first_problems_are_kept_but_all_counted() -> None:
    rows = make_rows(export_check.MAX_PROBLEMS + 50)
    checkpoint = checkpoint_of(rows, 1)
    for r in rows:
        r["salt"] = "nope"
    report = check_rows(lines_of(rows), checkpoint)
    assert len(report.problems) == export_check.MAX_PROBLEMS
    assert report.problem_count == len(rows)
    assert "50 more not shown" in report.findings()[export_check.MAX_PROBLEMS]


_TEXT = st.text(max_size=30) | st.none()


@settings(max_examples=300, deadline=None)
@given(
    st.fixed_dictionaries(
        dict.fromkeys(export_check.TEXT_FIELDS, _TEXT)
        | {
            "actor_id": st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=20)
            | st.none(),
            "subject_id": st.lists(
                st.text(alphabet=st.characters(blacklist_categories=["Cs"]), max_size=8),
                max_size=4,
            ).map(",".join)
            | st.none(),
            "at": st.datetimes(timezones=st.timezones()).map(lambda d: d.isoformat()),
            "policy_version": st.integers(-(1 << 63), (1 << 63) - 1) | st.none(),
        }
    ),
    st.binary(min_size=16, max_size=16),
)
def test_the_direct_leaf_encoding_is_verifier_leaf_byte_for_byte(
    row: dict[str, Any], salt: bytes
) -> None:
    try:
        expected = leaf.leaf_data(row, salt)
    except (ValueError, OverflowError):
        return  # e.g. a time zone that overflows near year 1 or 9999
    assert export_check._leaf_data(row, salt) == expected


def test_several_processes_agree_with_one(tmp_path: Path) -> None:
    rows = make_rows(3 * export_check.CHUNK + 17)
    checkpoint = checkpoint_of(rows, len(rows) - 5)
    rows[5000]["category"] = "edited"
    rows[9000]["salt"] = "bad"
    path = tmp_path / "rows.jsonl"
    path.write_bytes(b"".join(lines_of(rows)))
    one = export_check.check_file(path, checkpoint, jobs=1)
    two = export_check.check_file(path, checkpoint, jobs=2)
    assert one.problems == two.problems
    assert one.root == two.root
    assert one.rows == two.rows == len(rows)
    assert [p.leaf_index for p in one.problems] == [9000]


def test_speed_of_the_check(capsys: pytest.CaptureFixture[str]) -> None:
    """Measures rows/s on simple rows (printed; see `pytest -s`). It must at least work."""
    rows = make_rows(20_000)
    lines = lines_of(rows)
    checkpoint = checkpoint_of(rows)
    started = time.perf_counter()
    report = check_rows(lines, checkpoint)
    elapsed = time.perf_counter() - started
    assert report.ok
    with capsys.disabled():
        sys.stdout.write(f"\ncheck-export, one process: {len(rows) / elapsed:,.0f} rows/s\n")


# --- the command line ---------------------------------------------------------------


@pytest.fixture(scope="module")
def signer() -> Signer:
    return Signer.generate(ORIGIN)


def _note(checkpoint: Checkpoint, signer: Signer) -> str:
    return str(Note(checkpoint.text, ()).signed(signer, BASE_TIME))


def _cli(*args: str | Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "verifier", "check-export", *map(str, args)],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


@pytest.fixture
def files(tmp_path: Path, signer: Signer) -> tuple[Path, Path, list[dict[str, Any]]]:
    rows = make_rows(200)
    rows_file = tmp_path / "rows.jsonl"
    rows_file.write_bytes(b"".join(lines_of(rows)))
    note_file = tmp_path / "checkpoint"
    note_file.write_text(_note(checkpoint_of(rows), signer))
    return rows_file, note_file, rows


def test_cli_ok_exits_0(files: tuple[Path, Path, Any], signer: Signer) -> None:
    rows_file, note_file, _ = files
    done = _cli("--rows", rows_file, "--checkpoint", note_file, "--log-key", signer.verifier.vkey)
    assert done.returncode == 0, done.stderr
    assert "ok: 200 rows, the root matches" in done.stdout
    assert "rows/s" in done.stdout


def test_cli_finding_exits_2(files: tuple[Path, Path, Any], signer: Signer) -> None:
    rows_file, note_file, rows = files
    rows[20]["actor_id"] = "someone-else"
    rows_file.write_bytes(b"".join(lines_of(rows[:150] + rows[151:])))
    done = _cli("--rows", rows_file, "--checkpoint", note_file, "--log-key", signer.verifier.vkey)
    assert done.returncode == 2
    assert "bad row: leaf 151 (line 151): leaf_index 151 follows 149" in done.stdout
    assert "truncated: the export holds 199 rows, the checkpoint covers 200" in done.stdout


def test_cli_rewrite_exits_2(files: tuple[Path, Path, Any], signer: Signer) -> None:
    rows_file, note_file, rows = files
    rows[20]["actor_id"] = "someone-else"
    rows_file.write_bytes(b"".join(lines_of(rows)))
    done = _cli("--rows", rows_file, "--checkpoint", note_file, "--log-key", signer.verifier.vkey)
    assert done.returncode == 2
    assert "rewritten:" in done.stdout


def test_cli_unusable_input_exits_1(files: tuple[Path, Path, Any], signer: Signer) -> None:
    rows_file, note_file, _ = files
    other = Signer.generate(ORIGIN).verifier.vkey
    cases = [
        (("--rows", rows_file, "--checkpoint", note_file, "--log-key", other), "does not open"),
        (("--rows", rows_file, "--checkpoint", note_file, "--log-key", "x+y+z"), "bad --log-key"),
        (
            ("--rows", rows_file.with_name("none"), "--checkpoint", note_file, "--log-key", other),
            "does not open",
        ),
        (
            (
                "--rows",
                rows_file.with_name("none"),
                "--checkpoint",
                note_file,
                "--log-key",
                signer.verifier.vkey,
            ),
            "cannot read",
        ),
        (
            ("--rows", rows_file, "--checkpoint", rows_file, "--log-key", signer.verifier.vkey),
            "does not open",
        ),
        (("--rows", rows_file), "required"),
    ]
    for args, message in cases:
        done = _cli(*args)
        assert done.returncode == 1, (args, done.stdout, done.stderr)
        assert message in done.stderr, (args, done.stderr)
        assert "Traceback" not in done.stderr


def test_a_checkpoint_with_a_bad_signature_is_refused(
    files: tuple[Path, Path, Any], signer: Signer
) -> None:
    rows_file, note_file, _ = files
    note = parse_note(note_file.read_text())
    line = note.signatures[0].line
    tampered = line[:-6] + ("A" if line[-6] != "A" else "B") + line[-5:]
    note_file.write_text(note.text + "\n" + tampered)
    done = _cli("--rows", rows_file, "--checkpoint", note_file, "--log-key", signer.verifier.vkey)
    assert done.returncode == 1
    assert "does not verify" in done.stderr


def test_the_benchmark_command_is_reproducible(tmp_path: Path, signer: Signer) -> None:
    """The command whose rows/s is reported: a 50,000-row export, checked by the CLI."""
    if not os.environ.get("CUSTOS_BENCH"):
        pytest.skip("set CUSTOS_BENCH=1 to measure (prints rows/s)")
    rows = make_rows(50_000)
    rows_file = tmp_path / "rows.jsonl"
    rows_file.write_bytes(b"".join(lines_of(rows)))
    note_file = tmp_path / "checkpoint"
    note_file.write_text(_note(checkpoint_of(rows), signer))
    done = _cli("--rows", rows_file, "--checkpoint", note_file, "--log-key", signer.verifier.vkey)
    assert done.returncode == 0
    sys.stdout.write(done.stdout)
