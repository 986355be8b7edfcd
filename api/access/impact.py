"""What-if of a change: the glue between a change and authz/what_if.py."""

from __future__ import annotations

from datetime import datetime

from api.access.changes import Change
from authz import separation, what_if


async def of_changes(
    keys: list[tuple[Change, datetime]],
) -> list[what_if.Impact]:
    """Replay the decisions logged since each key's time under the stored policy with and
    without its change (an applied change replays as no change): one scan of the log per
    window, however many proposals a request asks about (a DataLoader batch)."""
    before = await separation.stored_policy()
    windows: dict[datetime, list[int]] = {}
    for i, (_, since) in enumerate(keys):
        windows.setdefault(since, []).append(i)
    found: dict[int, what_if.Impact] = {}
    for since, indexes in windows.items():
        afters = [keys[i][0].apply(before) for i in indexes]
        impacts = await what_if.replay_many(before=before, afters=afters, since=since)
        found.update(zip(indexes, impacts, strict=True))
    return [found[i] for i in range(len(keys))]


def candidate(rules: list[list[str]], stored: separation.PolicyState) -> separation.PolicyState:
    """A whole candidate policy (`p` rules and role-to-role `g` links, as in a policy
    file) with the employees' role grants as stored."""
    grants = {link for link in stored.links if link[0].startswith("employee:")}
    return separation.PolicyState(
        frozenset(tuple(r[1:]) for r in rules if r[0] == "p"),
        frozenset(grants | {(r[1], r[2]) for r in rules if r[0] == "g"}),
    )


async def of_policy(after: separation.PolicyState, *, since: datetime) -> what_if.Impact:
    """Replay against a whole candidate policy (see `candidate`)."""
    before = await separation.stored_policy()
    return await what_if.replay(before=before, after=after, since=since)
